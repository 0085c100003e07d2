import type { Platform, UsbDevice } from '../../shared/protocol';
import type { ByteSource, Encrypted } from './volume-classifier';

/**
 * One attachment of a USB device, as an OS adapter reports it. The strings in
 * it are already sanitised (shared/usb/descriptor-text). `key` is the
 * adapter's own handle for this attachment (a sysfs name such as `1-2.3`, a
 * PnP instance id, an IORegistry id): the same for arrival, actions and
 * removal, and never shared by two devices attached at once.
 */
export interface ObservedUsbDevice extends UsbDevice {
  key: string;
  /** The device's descriptors could not be read whole: its classes are not known, so it is not trusted. */
  descriptorsIncomplete?: boolean;
  /** Tells this attachment from a later one on the same port (Linux: bus and device number). */
  instance?: string;
}

/** `media-changed`: an allowed storage device shows new media (a card swapped in a reader) and must be judged again. */
export type UsbChange =
  { kind: 'arrived'; device: ObservedUsbDevice } | { kind: 'removed'; device: ObservedUsbDevice } | { kind: 'media-changed'; device: ObservedUsbDevice };

/** What the OS itself knows about one volume: BitLocker from manage-bde, APFS and FileVault from diskutil. */
export interface OsVolumeView {
  device: string;
  filesystem?: string;
  encrypted: Encrypted;
  scheme: 'bitlocker' | 'bitlocker-to-go' | 'apfs-encrypted' | 'filevault' | 'luks1' | 'luks2' | 'none' | 'unknown';
  sizeBytes?: number;
}

export interface ClosableByteSource extends ByteSource {
  close(): Promise<void>;
}

/** One disk of a storage device (a card reader can have several). */
export interface StorageDisk {
  /** As the OS names it: /dev/sdb, \\.\PHYSICALDRIVE2, disk4. */
  device: string;
  sizeBytes?: number;
  /** The raw bytes, where the adapter may read them; the classifier reads a few hundred KiB at most. */
  open?: () => Promise<ClosableByteSource>;
  /**
   * The partitions the OS itself made of this disk (Linux: the kernel's). When
   * present they are what gets mounted, so they are judged rather than the
   * disk's first bytes: a LUKS header written over an ordinary MBR must not
   * make its FAT partition count as encrypted.
   */
  partitions?: Array<{ device: string; sizeBytes?: number; open: () => Promise<ClosableByteSource> }>;
  /** The OS's own view of the volumes on the disk; empty when the adapter relies on the bytes alone. */
  volumes: OsVolumeView[];
}

/**
 * Everything the USB rule needs from an operating system. One implementation
 * per OS, chosen in the composition root; each passes the same contract suite
 * (test/agent/usb/platform-contract.ts).
 */
export interface UsbPlatform {
  readonly platform: Platform;
  /** Whether `readOnly` can work here. */
  readonly canReadOnly: boolean;
  /**
   * Starts watching and returns the devices attached now, so that a stick
   * plugged in before the agent started is decided too. On Linux, devices
   * attached from here on are held (not authorised) until `allow`.
   */
  start(listener: (change: UsbChange) => void): Promise<ObservedUsbDevice[]>;
  stop(): Promise<void>;
  /** Reads the OS's view again now and reports what changed: a hotplug signal (node-usb) calls it so polling OSes notice at once. */
  pollNow(): Promise<void>;
  /** The disks of a storage device once the OS shows them; waits a bounded time. */
  storage(device: ObservedUsbDevice): Promise<StorageDisk[]>;
  /** Lets the device work (authorised, its volumes free to mount). */
  allow(device: ObservedUsbDevice): Promise<void>;
  /** Stops the device: volumes unmounted, then de-authorised, ejected or disabled. */
  block(device: ObservedUsbDevice): Promise<void>;
  /** Lets the device work read-only; rejects with INV_ERR_USB_READONLY_UNSUPPORTED where the OS cannot. */
  readOnly(device: ObservedUsbDevice): Promise<void>;
}

/** "Something changed on the USB bus": node-usb's hotplug events, which make polling adapters look again at once. */
export interface HotplugSignal {
  start(onChange: () => void): Promise<boolean>;
  stop(): void;
}

/** USB class codes the rule looks at. */
export const USB_CLASS = { hid: 0x03, massStorage: 0x08, hub: 0x09 } as const;

export function hasInterfaceClass(device: UsbDevice, cls: number): boolean {
  return device.deviceClass === cls || device.interfaceClasses.includes(cls);
}
