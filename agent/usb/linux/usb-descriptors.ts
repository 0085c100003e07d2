/**
 * The raw descriptors the kernel keeps for every USB device in sysfs
 * (`descriptors`: the device descriptor, then each configuration with its
 * interfaces). They are there before the device is authorised, when no
 * interface directories exist yet, so a held device can be judged by what it
 * claims to be before any of its drivers bind. The bytes come from the device
 * itself, so every length is checked.
 */
export interface ParsedDescriptors {
  vendorId: number;
  productId: number;
  deviceClass: number;
  /** Every distinct interface class, across all configurations and alternate settings, in order of first appearance. */
  interfaceClasses: number[];
  /** False when the walk stopped at a malformed descriptor: what follows it is unknown, so the device cannot be trusted. */
  complete: boolean;
}

const DEVICE = 1;
const INTERFACE = 4;
/** The kernel keeps at most this much (a few configurations); anything longer is not a real device's. */
const MAX_BYTES = 64 * 1024;

export function parseUsbDescriptors(bytes: Uint8Array): ParsedDescriptors | undefined {
  if (bytes.length < 18 || bytes[0] !== 18 || bytes[1] !== DEVICE) return undefined;
  const u16 = (o: number) => bytes[o]! | (bytes[o + 1]! << 8);
  const classes = new Set<number>();
  const end = Math.min(bytes.length, MAX_BYTES);
  let offset = 18;
  let complete = true;
  // Each step advances by at least two bytes, so the walk is bounded by the length; a zero or overrunning length ends it as incomplete.
  while (offset < end) {
    const length = bytes[offset]!;
    if (length < 2 || offset + length > end) {
      complete = false;
      break;
    }
    if (bytes[offset + 1] === INTERFACE) {
      if (length < 9) {
        complete = false;
        break;
      }
      classes.add(bytes[offset + 5]!);
    }
    offset += length;
  }
  if (bytes.length > MAX_BYTES) complete = false;
  return { vendorId: u16(8), productId: u16(10), deviceClass: bytes[4]!, interfaceClasses: [...classes], complete };
}
