import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InvigilatorError } from '../../../shared/errors';
import { type DarwinUsbPlatform, createDarwinUsbPlatform } from '../../../agent/usb/darwin/darwin-usb-platform';
import {
  DISKUTIL_FILE,
  apfsVolumeView,
  isApfsPartition,
  parseApfsList,
  parseDiskInfo,
  parseDiskList,
  partitionVolumeView,
} from '../../../agent/usb/darwin/diskutil';
import { DISK_OR_SLICE, IOREG_ARGS, IOREG_FILE, parseIoregUsb } from '../../../agent/usb/darwin/ioreg';
import { type RecordedAnswer, RecordedCommands } from '../../../agent/os/recorded-commands';
import type { ObservedUsbDevice, UsbChange } from '../../../agent/usb/usb-platform';
import { type RigDevice, type RigEffect, type UsbPlatformRig, usbPlatformContract } from './platform-contract';

const FIXTURES = path.join(__dirname, '../../fixtures/usb/darwin');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (e) {
    if (e instanceof InvigilatorError) return e.code;
    throw e;
  }
}

// ---------------------------------------------------------------------------
// Recorded plists: ioreg and diskutil print XML property lists (agent/os/darwin/plist.ts, tested in test/agent/os/darwin/).
// ---------------------------------------------------------------------------

const HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n';
const doc = (body: string) => `${HEADER}<plist version="1.0">\n${body}\n</plist>\n`;

// ---------------------------------------------------------------------------
// ioreg and diskutil readers, on the recorded outputs.
// ---------------------------------------------------------------------------

describe('parseIoregUsb', () => {
  it('reads a stick: ids, strings, classes, key from location and session, and its one whole disk', () => {
    const [attachment, ...rest] = parseIoregUsb(fixture('ioreg-plain-stick.plist')).values();
    expect(rest).toHaveLength(0);
    expect(attachment!.device).toEqual({
      key: '0x14100000:21474913356801',
      vendorId: '0781',
      productId: '5567',
      serial: '4C530001230101110453',
      manufacturer: 'SanDisk',
      product: 'Cruzer Blade',
      deviceClass: 0,
      interfaceClasses: [8],
      bus: '14',
      port: '1',
    });
    expect(attachment!.disks).toEqual(['disk4']);
  });

  it('takes the physical disk of an APFS stick, not the container synthesised from it', () => {
    const [attachment] = parseIoregUsb(fixture('ioreg-encrypted-stick.plist')).values();
    expect(attachment!.disks).toEqual(['disk5']);
  });

  it('reads a keyboard: HID interfaces, no serial, no disks', () => {
    const [attachment] = parseIoregUsb(fixture('ioreg-keyboard.plist')).values();
    expect(attachment!.device).toMatchObject({ vendorId: '05ac', productId: '024f', interfaceClasses: [3], product: 'Apple Keyboard' });
    expect(attachment!.device.serial).toBeUndefined();
    expect(attachment!.disks).toEqual([]);
  });

  it('sanitises hostile strings and drops BSD names that are not disk identifiers', () => {
    const [attachment] = parseIoregUsb(fixture('ioreg-hostile-strings.plist')).values();
    const { device } = attachment!;
    expect(device.product!.startsWith('<script>alert(1)</script>')).toBe(true);
    for (const s of [device.manufacturer, device.product, device.serial]) {
      expect(s!.length).toBeLessThanOrEqual(126);
      // eslint-disable-next-line no-control-regex
      expect(s).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
    }
    expect(attachment!.disks).toEqual([]);
  });

  it('masks a sign-extended locationID (as some Macs print it) to 32 bits, and reports a device printed twice once', () => {
    const dev = (children = '') =>
      `<dict><key>IOObjectClass</key><string>IOUSBHostDevice</string><key>idVendor</key><integer>1452</integer><key>idProduct</key><integer>545</integer>` +
      `<key>locationID</key><integer>18446744073610133504</integer><key>sessionID</key><integer>1520390417</integer>${children}</dict>`;
    const hub = `<dict><key>IOObjectClass</key><string>IOUSBHostDevice</string><key>idVendor</key><integer>1452</integer><key>idProduct</key><integer>4099</integer><key>bDeviceClass</key><integer>9</integer><key>locationID</key><integer>4194304000</integer><key>sessionID</key><integer>9</integer><key>IORegistryEntryChildren</key><array>${dev()}</array></dict>`;
    const devices = [...parseIoregUsb(doc(`<array>${hub}${dev()}</array>`)).values()].map((a) => a.device);
    expect(devices.map((d) => d.key)).toEqual(['0xfa000000:9', '0xfa130000:1520390417']);
    expect(devices[1]!.port).toBe('1.3');
    expect(devices[0]!.deviceClass).toBe(9);
  });

  it('reads no devices from empty output and refuses output that is not a plist', () => {
    expect(parseIoregUsb('').size).toBe(0);
    expect(() => parseIoregUsb('ioreg: invalid option')).toThrow(expect.objectContaining({ code: 'INV_ERR_USB_OS_OUTPUT_INVALID' }));
  });
});

describe('diskutil readers', () => {
  it('lists the partitions of one disk, and a disk without a partition table as its own volume', () => {
    expect(parseDiskList(fixture('diskutil-list-disk5.plist'), 'disk5')).toEqual([
      { device: 'disk5s1', content: 'EFI', sizeBytes: 209715200 },
      { device: 'disk5s2', content: 'Apple_APFS', sizeBytes: 63862583296 },
    ]);
    const bare = doc(
      '<dict><key>AllDisksAndPartitions</key><array><dict><key>Content</key><string></string><key>DeviceIdentifier</key><string>disk7</string><key>Size</key><integer>1000</integer></dict></array></dict>',
    );
    expect(parseDiskList(bare, 'disk7')).toEqual([{ device: 'disk7', content: '', sizeBytes: 1000 }]);
    expect(parseDiskList(bare, 'disk8')).toEqual([]);
  });

  it('drops identifiers that are not disk identifiers', () => {
    const hostile = doc(
      '<dict><key>AllDisksAndPartitions</key><array><dict><key>DeviceIdentifier</key><string>disk7</string><key>Partitions</key><array>' +
        '<dict><key>DeviceIdentifier</key><string>disk7s1; reboot</string></dict><dict><key>DeviceIdentifier</key><string>disk7s2</string></dict></array></dict></array></dict>',
    );
    expect(parseDiskList(hostile, 'disk7').map((p) => p.device)).toEqual(['disk7s2']);
  });

  it('reads a FAT32 partition as plain vfat', () => {
    const info = parseDiskInfo(fixture('diskutil-info-disk4s1.plist'));
    expect(info).toMatchObject({ device: 'disk4s1', busProtocol: 'USB', filesystemType: 'msdos', sizeBytes: 15629025280 });
    expect(partitionVolumeView({ device: 'disk4s1' }, info)).toEqual({
      device: 'disk4s1',
      filesystem: 'vfat',
      encrypted: false,
      scheme: 'none',
      sizeBytes: 15629025280,
    });
  });

  it('reads encrypted CoreStorage as encrypted and an unreadable filesystem as unknown', () => {
    expect(partitionVolumeView({ device: 'disk3s2' }, { device: 'disk3s2', coreStorageEncrypted: true })).toMatchObject({
      encrypted: true,
      scheme: 'filevault',
    });
    expect(partitionVolumeView({ device: 'disk3s2' }, { device: 'disk3s2', filesystemType: 'hfs' })).toMatchObject({
      encrypted: false,
      filesystem: 'hfsplus',
    });
    expect(partitionVolumeView({ device: 'disk3s1' }, { device: 'disk3s1' })).toMatchObject({ encrypted: 'unknown', scheme: 'unknown' });
  });

  it('reads APFS containers and maps each volume to the OS view', () => {
    const containers = parseApfsList(fixture('diskutil-apfs-list-with-encrypted-stick.plist'));
    expect(containers.map((c) => [c.reference, c.physicalStores])).toEqual([
      ['disk1', ['disk0s2']],
      ['disk6', ['disk5s2']],
    ]);
    expect(isApfsPartition({ device: 'disk5s2', content: 'Apple_APFS' })).toBe(true);
    expect(isApfsPartition({ device: 'disk4s1', content: 'DOS_FAT_32' })).toBe(false);
    const stick = containers[1]!.volumes[0]!;
    expect(apfsVolumeView(stick)).toEqual({ device: 'disk6s1', filesystem: 'apfs', encrypted: true, scheme: 'apfs-encrypted', sizeBytes: 849633280 });
    const base = { device: 'disk3s5', encryption: true, fileVault: true, locked: false, roles: ['Data'] };
    expect(apfsVolumeView(base)).toMatchObject({ encrypted: true, scheme: 'filevault' });
    expect(apfsVolumeView({ ...base, fileVault: false, roles: [] })).toMatchObject({ encrypted: 'unknown', scheme: 'unknown' });
    expect(apfsVolumeView({ ...base, encryption: false, fileVault: false })).toMatchObject({ encrypted: false, scheme: 'none' });
  });
});

// ---------------------------------------------------------------------------
// The rig: recorded outputs composed by which devices are plugged in; effects
// read back from the diskutil commands the adapter actually ran.
// ---------------------------------------------------------------------------

const DISK_OWNERS: Record<string, RigDevice> = {
  disk2: 'present-at-start',
  disk2s1: 'present-at-start',
  disk4: 'plain-stick',
  disk4s1: 'plain-stick',
  disk5: 'encrypted-stick',
  disk5s1: 'encrypted-stick',
  disk5s2: 'encrypted-stick',
  disk6: 'encrypted-stick',
  disk6s1: 'encrypted-stick',
};
const HAS_DISKS = new Set(Object.values(DISK_OWNERS));

/** The device dicts of one recorded `ioreg -r -c IOUSBHostDevice -l -a` listing, to splice into another. */
function ioregEntries(device: RigDevice): string {
  const text = fixture(`ioreg-${device}.plist`);
  return text.slice(text.indexOf('<array>') + '<array>'.length, text.lastIndexOf('</array>'));
}

class DarwinRig implements UsbPlatformRig {
  readonly runner = new RecordedCommands();
  readonly platform: DarwinUsbPlatform;
  readonly plugged = new Set<RigDevice>(['present-at-start']);
  private readonly effects = new Map<RigDevice, RigEffect>();

  constructor(options: { onError?: (e: unknown) => void } = {}) {
    this.runner.respond((file, args) => this.answer(file, args));
    this.platform = createDarwinUsbPlatform({ runner: this.runner, pollMs: 3_600_000, diskWaitMs: 0, ...options });
  }

  private answer(file: string, args: readonly string[]): RecordedAnswer | undefined {
    if (file === IOREG_FILE && args.join(' ') === IOREG_ARGS.join(' ')) {
      return { stdout: `${HEADER}<plist version="1.0">\n<array>${[...this.plugged].map(ioregEntries).join('')}</array>\n</plist>\n` };
    }
    if (file !== DISKUTIL_FILE) return undefined;
    const verb = args.join(' ');
    if (verb === 'apfs list -plist') {
      return { stdout: fixture(this.plugged.has('encrypted-stick') ? 'diskutil-apfs-list-with-encrypted-stick.plist' : 'diskutil-apfs-list.plist') };
    }
    const target = args[args.length - 1]!;
    const owner = DISK_OWNERS[target];
    // What diskutil says, with exit 1, about a disk that is not there.
    if (owner === undefined || !this.plugged.has(owner)) return { stdout: `Could not find disk: ${target}\n`, code: 1 };
    const effect = (e: RigEffect, stdout: string): RecordedAnswer => {
      this.effects.set(owner, e);
      return { stdout };
    };
    switch (args.slice(0, -1).join(' ')) {
      case 'list -plist':
        return { stdout: fixture(`diskutil-list-${target}.plist`) };
      case 'info -plist':
        return { stdout: fixture(`diskutil-info-${target}.plist`) };
      case 'unmountDisk force':
        return { stdout: `Forced unmount of all volumes on ${target} was successful\n` };
      case 'eject':
        return effect('blocked', `Disk ${target} ejected\n`);
      case 'mountDisk':
        return effect('allowed', 'Volume(s) mounted successfully\n');
      case 'mount readOnly':
        return effect('readonly', `Volume on ${target} mounted\n`);
      default:
        return undefined;
    }
  }

  async plug(device: Exclude<RigDevice, 'present-at-start'>): Promise<void> {
    this.plugged.add(device);
    await this.platform.pollNow();
  }

  async unplug(device: RigDevice): Promise<void> {
    this.plugged.delete(device);
    await this.platform.pollNow();
  }

  /**
   * A device with disks has the effect of the last diskutil command that
   * acted on them. A device without disks (the keyboard) has no command that
   * could act on it on macOS and works as soon as it is attached, so it reads
   * `allowed` while attached: that half of the contract is vacuous here.
   */
  effect(device: RigDevice): RigEffect {
    const recorded = this.effects.get(device);
    if (recorded) return recorded;
    return this.plugged.has(device) && !HAS_DISKS.has(device) ? 'allowed' : 'none';
  }

  /** Every argument that reached diskutil, so a test can check none of them was anything but a word or a disk identifier. */
  diskutilArguments(): string[] {
    return this.runner.calls.filter((c) => c.file === DISKUTIL_FILE).flatMap((c) => c.args);
  }

  async close(): Promise<void> {}
}

usbPlatformContract('darwin', async () => new DarwinRig());

describe('the darwin USB adapter', () => {
  let rig: DarwinRig;
  let changes: UsbChange[];
  const arrivedOf = (vendorId: string) => changes.find((c) => c.kind === 'arrived' && c.device.vendorId === vendorId)!.device;

  beforeEach(async () => {
    rig = new DarwinRig();
    changes = [];
    await rig.platform.start((c) => changes.push(c));
  });
  afterEach(() => rig.platform.stop());

  it('runs only absolute program paths, and only the commands it documents', async () => {
    await rig.plug('plain-stick');
    const stick = arrivedOf('0781');
    await rig.platform.storage(stick);
    await rig.platform.readOnly(stick);
    await rig.platform.allow(stick);
    await rig.platform.block(stick);
    const lines = rig.runner.calls.map((c) => [c.file, ...c.args].join(' '));
    expect(new Set(lines)).toEqual(
      new Set([
        '/usr/sbin/ioreg -r -c IOUSBHostDevice -l -w0 -a',
        '/usr/sbin/diskutil info -plist disk4',
        '/usr/sbin/diskutil list -plist disk4',
        '/usr/sbin/diskutil info -plist disk4s1',
        '/usr/sbin/diskutil unmountDisk force disk4',
        '/usr/sbin/diskutil mount readOnly disk4s1',
        '/usr/sbin/diskutil mountDisk disk4',
        '/usr/sbin/diskutil eject disk4',
      ]),
    );
  });

  it('remounts a stick it made read-only when it is allowed after all', async () => {
    await rig.plug('plain-stick');
    const stick = arrivedOf('0781');
    await rig.platform.readOnly(stick);
    const before = rig.runner.calls.length;
    await rig.platform.allow(stick);
    expect(rig.runner.calls.slice(before).map((c) => c.args.join(' '))).toEqual(expect.arrayContaining(['unmountDisk force disk4', 'mountDisk disk4']));
    expect(rig.effect('plain-stick')).toBe('allowed');
  });

  it('passes no hostile BSD name or serial to any command, whatever it is asked to do', async () => {
    await rig.plug('hostile-strings');
    const evil = arrivedOf('1234');
    expect(await rig.platform.storage(evil)).toEqual([]);
    expect(await codeOf(rig.platform.block(evil))).toBe('INV_ERR_USB_OS_COMMAND_FAILED');
    expect(await codeOf(rig.platform.readOnly(evil))).toBe('INV_ERR_USB_READONLY_UNSUPPORTED');
    await rig.platform.allow(evil);
    for (const arg of rig.diskutilArguments()) expect(DISK_OR_SLICE.test(arg) || /^[A-Za-z-]+$/.test(arg)).toBe(true);
    expect(rig.runner.calls.flatMap((c) => c.args).join(' ')).not.toMatch(/reboot|\.\.\/|\$\(|-rf|--force/);
  });

  it('cannot block a device without disks, and says so with a code', async () => {
    await rig.plug('keyboard');
    const keyboard = arrivedOf('05ac');
    expect(await codeOf(rig.platform.block(keyboard))).toBe('INV_ERR_USB_OS_COMMAND_FAILED');
    expect(await codeOf(rig.platform.readOnly(keyboard))).toBe('INV_ERR_USB_READONLY_UNSUPPORTED');
  });

  it('answers a device that goes between listing and acting with INV_ERR_USB_DEVICE_GONE', async () => {
    await rig.plug('plain-stick');
    const stick = arrivedOf('0781');
    // Pulled out after the adapter found the disk but before diskutil reached it.
    const original = rig.runner.run.bind(rig.runner);
    jest.spyOn(rig.runner, 'run').mockImplementation(async (file, args, timeout) => {
      if (file === DISKUTIL_FILE && args[0] === 'unmountDisk') rig.plugged.delete('plain-stick');
      return original(file, args, timeout);
    });
    expect(await codeOf(rig.platform.block(stick))).toBe('INV_ERR_USB_DEVICE_GONE');
    expect(await codeOf(rig.platform.storage(stick))).toBe('INV_ERR_USB_DEVICE_GONE');
  });

  it("reports one arrival however often it polls, and the removal with the arrival's device", async () => {
    await rig.plug('plain-stick');
    await rig.platform.pollNow();
    expect(changes.filter((c) => c.kind === 'arrived')).toHaveLength(1);
    const first: ObservedUsbDevice = arrivedOf('0781');
    await rig.unplug('plain-stick');
    expect(changes.at(-1)).toEqual({ kind: 'removed', device: first });
  });
});

describe('watching', () => {
  it('polls on its own timer and reports a failed poll without stopping', async () => {
    const errors: unknown[] = [];
    const rig = new DarwinRig({ onError: (e) => errors.push(e) });
    const platform = createDarwinUsbPlatform({ runner: rig.runner, pollMs: 20, diskWaitMs: 0, onError: (e) => errors.push(e) });
    const changes: UsbChange[] = [];
    await platform.start((c) => changes.push(c));
    const broken = jest.spyOn(rig.runner, 'run').mockResolvedValueOnce({ stdout: 'not a plist', code: 0 });
    await new Promise((r) => setTimeout(r, 60));
    expect(errors.some((e) => e instanceof InvigilatorError && e.code === 'INV_ERR_USB_OS_OUTPUT_INVALID')).toBe(true);
    broken.mockRestore();
    rig.plugged.add('keyboard');
    for (let i = 0; i < 50 && changes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(changes).toEqual([{ kind: 'arrived', device: expect.objectContaining({ vendorId: '05ac' }) }]);
    await platform.stop();
  });

  it('fails start with a code when ioreg fails', async () => {
    const runner = new RecordedCommands().record(IOREG_FILE, [...IOREG_ARGS], { stdout: '', code: 1 });
    expect(await codeOf(createDarwinUsbPlatform({ runner }).start(() => undefined))).toBe('INV_ERR_USB_OS_COMMAND_FAILED');
  });
});
