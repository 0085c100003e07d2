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
  /** Every interface's class, across all configurations, in order. */
  interfaceClasses: number[];
}

const DEVICE = 1;
const CONFIGURATION = 2;
const INTERFACE = 4;

export function parseUsbDescriptors(bytes: Uint8Array): ParsedDescriptors | undefined {
  if (bytes.length < 18 || bytes[0]! < 18 || bytes[1] !== DEVICE) return undefined;
  const u16 = (o: number) => bytes[o]! | (bytes[o + 1]! << 8);
  const interfaceClasses: number[] = [];
  let offset = bytes[0]!;
  // Bounded walk: each step advances by at least two bytes, and a zero or overrunning length ends it.
  while (offset + 2 <= bytes.length && interfaceClasses.length < 64) {
    const length = bytes[offset]!;
    const type = bytes[offset + 1]!;
    if (length < 2 || offset + length > bytes.length) break;
    if (type === INTERFACE && length >= 9) interfaceClasses.push(bytes[offset + 5]!);
    else if (type === CONFIGURATION && length < 9) break;
    offset += length;
  }
  return { vendorId: u16(8), productId: u16(10), deviceClass: bytes[4]!, interfaceClasses };
}
