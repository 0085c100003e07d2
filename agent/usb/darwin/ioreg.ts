import { descriptorText, hex4 } from '../../../shared/usb/descriptor-text';
import type { ObservedUsbDevice } from '../usb-platform';
import { type PlistDict, type PlistValue, isDict, parsePlist, str } from '../../os/darwin/plist';

/**
 * `ioreg -r -c IOUSBHostDevice -l -a`: every USB device as the root of its
 * IOService subtree, as a plist. One command gives all three things the
 * adapter needs, because in the IOService plane a device's interfaces
 * (bInterfaceClass) and, further down, the IOMedia objects of its disks
 * ("BSD Name") are its descendants. The IOUSB plane (`ioreg -p IOUSB`) has the
 * same device properties but stops at devices, so it would need a second
 * command for interfaces and a guess to find the disks.
 */
export const IOREG_FILE = '/usr/sbin/ioreg';
export const IOREG_ARGS: readonly string[] = ['-r', '-c', 'IOUSBHostDevice', '-l', '-w0', '-a'];

/** Whole disks only: the one shape of BSD name that may become a diskutil argument for a whole disk. */
export const WHOLE_DISK = /^disk\d+$/;
/** A whole disk or one of its slices; nothing else ever reaches a command line. */
export const DISK_OR_SLICE = /^disk\d+(s\d+)?$/;

export interface DarwinUsbAttachment {
  device: ObservedUsbDevice;
  /** The whole disks whose IOMedia hang below this device, each matching WHOLE_DISK. */
  disks: string[];
}

const DEVICE_CLASSES = new Set(['IOUSBHostDevice', 'IOUSBDevice']);

function integer(dict: PlistDict, key: string): bigint | undefined {
  const v = dict.get(key);
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  return typeof v === 'bigint' ? v : undefined;
}

function isUsbDevice(dict: PlistDict): boolean {
  if (dict.has('bInterfaceClass') || integer(dict, 'idVendor') === undefined || integer(dict, 'locationID') === undefined) return false;
  const cls = str(dict, 'IOObjectClass');
  return cls === undefined || DEVICE_CLASSES.has(cls);
}

/**
 * locationID is 32 bits: the controller in the top byte, then one nibble per
 * hub port. Some Macs print it sign-extended to 64 bits, hence the mask.
 */
function location(dict: PlistDict): { hex: string; bus: string; port: string } {
  const loc = Number(BigInt.asUintN(32, integer(dict, 'locationID') ?? 0n));
  const nibbles: number[] = [];
  for (let shift = 20; shift >= 0; shift -= 4) {
    const n = (loc >>> shift) & 0xf;
    if (n === 0) break;
    nibbles.push(n);
  }
  return { hex: `0x${loc.toString(16).padStart(8, '0')}`, bus: (loc >>> 24).toString(16).padStart(2, '0'), port: nibbles.join('.') };
}

class DeviceBuilder {
  readonly interfaceClasses = new Set<number>();
  readonly disks = new Set<string>();
  constructor(readonly dict: PlistDict) {}

  build(): DarwinUsbAttachment | undefined {
    const d = this.dict;
    // The session id changes on every attachment, so a stick pulled and put back in the same port is a new key.
    const session = integer(d, 'sessionID') ?? integer(d, 'IORegistryEntryID');
    if (session === undefined) return undefined;
    const loc = location(d);
    const cls = Number(integer(d, 'bDeviceClass') ?? 0n);
    const text = (primary: string, legacy: string) => descriptorText(str(d, primary) ?? str(d, legacy));
    const serial = text('USB Serial Number', 'kUSBSerialNumberString');
    const manufacturer = text('USB Vendor Name', 'kUSBVendorString');
    const product = text('USB Product Name', 'kUSBProductString');
    const device: ObservedUsbDevice = {
      key: `${loc.hex}:${session.toString()}`,
      // USB ids are 16 bits; anything else is reported as 0000 rather than dropping the device, which would let it through undecided.
      vendorId: hex4(Number(integer(d, 'idVendor'))) ?? '0000',
      productId: hex4(Number(integer(d, 'idProduct') ?? -1n)) ?? '0000',
      deviceClass: cls >= 0 && cls <= 255 ? cls : 0,
      interfaceClasses: [...this.interfaceClasses].sort((a, b) => a - b).slice(0, 64),
      bus: loc.bus,
      ...(loc.port ? { port: loc.port } : {}),
      ...(serial !== undefined ? { serial } : {}),
      ...(manufacturer !== undefined ? { manufacturer } : {}),
      ...(product !== undefined ? { product } : {}),
    };
    return { device, disks: [...this.disks].sort() };
  }
}

function children(dict: PlistDict): PlistDict[] {
  const v = dict.get('IORegistryEntryChildren');
  return Array.isArray(v) ? v.filter(isDict) : [];
}

/**
 * Walks the tree: each dict belongs to the nearest USB device above it.
 * Only the first whole IOMedia on a branch is the device's disk; whole media
 * further down (an APFS container, a CoreStorage volume) are synthesised from
 * it and go with it.
 */
function walk(dict: PlistDict, owner: DeviceBuilder | undefined, belowDisk: boolean, found: DeviceBuilder[]): void {
  let current = owner;
  let inDisk = belowDisk;
  if (isUsbDevice(dict)) {
    current = new DeviceBuilder(dict);
    inDisk = false;
    found.push(current);
  } else if (current) {
    const cls = integer(dict, 'bInterfaceClass');
    if (cls !== undefined && cls >= 0n && cls <= 255n) current.interfaceClasses.add(Number(cls));
    const bsd = str(dict, 'BSD Name');
    if (bsd !== undefined && dict.get('Whole') === true && !inDisk) {
      inDisk = true;
      // A name of any other shape is dropped here, so it can never become an argument.
      if (WHOLE_DISK.test(bsd)) current.disks.add(bsd);
    }
  }
  for (const child of children(dict)) walk(child, current, inDisk, found);
}

/** The attached USB devices by key. Throws INV_ERR_USB_OS_OUTPUT_INVALID when the output is not a plist. */
export function parseIoregUsb(text: string): Map<string, DarwinUsbAttachment> {
  const root: PlistValue = text.trim() === '' ? [] : parsePlist(text);
  const tops = Array.isArray(root) ? root.filter(isDict) : isDict(root) ? [root] : [];
  const found: DeviceBuilder[] = [];
  for (const top of tops) walk(top, undefined, false, found);
  const result = new Map<string, DarwinUsbAttachment>();
  for (const builder of found) {
    const attachment = builder.build();
    // `-r` may print a device behind a hub both inside the hub's subtree and as a root of its own; keep the first.
    if (attachment && !result.has(attachment.device.key)) result.set(attachment.device.key, attachment);
  }
  return result;
}
