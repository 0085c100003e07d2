import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import type { Uevent, UeventSource } from '../../agent/usb/linux/uevent-source';
import { UeventParser } from '../../agent/usb/linux/uevent-source';
import { tempDir } from './cli';

/**
 * A stand-in for the Linux kernel's USB view, for the sysfs adapter's tests:
 * a sysfs tree in a temporary folder laid out as the kernel lays it out
 * (Documentation/ABI/testing/sysfs-bus-usb, sysfs-block), udev events in the
 * text `udevadm monitor --udev --property` prints, and the kernel's reaction
 * to `authorized`: binding a storage device creates its disk (backed by a
 * real disk image made by the test), de-authorising removes it. The event
 * text follows the format of a real monitor log (Ubuntu bug 148003's
 * attachment udev.log) with the properties the kernel's uevent code adds
 * (drivers/usb/core/usb.c usb_dev_uevent: PRODUCT, TYPE, BUSNUM, DEVNUM;
 * block/genhd.c: MAJOR, MINOR, DEVNAME, DEVTYPE disk|partition).
 */
export interface FixtureDevice {
  vendorId: number;
  productId: number;
  deviceClass?: number;
  interfaceClasses: number[];
  /** Raw bytes as the device would give them; sysfs passes them through. */
  serial?: Buffer | string;
  manufacturer?: Buffer | string;
  product?: Buffer | string;
  /** For storage: the image file behind its disk, and its partitions' sizes in sectors. */
  disk?: { image: string; partitions?: number };
}

const PCI = 'devices/pci0000:00/0000:00:14.0';

/** The device descriptor and one configuration with one interface per class, as the kernel stores them in `descriptors`. */
export function rawDescriptors(d: FixtureDevice): Buffer {
  const device = Buffer.alloc(18);
  device.writeUInt8(18, 0);
  device.writeUInt8(1, 1);
  device.writeUInt16LE(0x0200, 2);
  device.writeUInt8(d.deviceClass ?? 0, 4);
  device.writeUInt8(64, 7);
  device.writeUInt16LE(d.vendorId, 8);
  device.writeUInt16LE(d.productId, 10);
  device.writeUInt8(1, 17);
  const interfaces = d.interfaceClasses.map((cls, i) => Buffer.from([9, 4, i, 0, 0, cls, 0, 0, 0]));
  const config = Buffer.alloc(9);
  config.writeUInt8(9, 0);
  config.writeUInt8(2, 1);
  config.writeUInt16LE(9 + interfaces.length * 9, 2);
  config.writeUInt8(interfaces.length, 4);
  return Buffer.concat([device, config, ...interfaces]);
}

export class SysfsFixture implements UeventSource {
  readonly root = tempDir('sysfs');
  readonly sys = join(this.root, 'sys');
  readonly dev = join(this.root, 'dev');
  readonly allowedDir = join(this.root, 'run/invigilator/usb-allowed');
  readonly mountInfo = join(this.root, 'mountinfo');
  /** Every write the adapter made to a sysfs file, in order, relative to the root hub: `1-1/authorized=0`, `authorized_default=0`. */
  readonly writes: string[] = [];
  private parser: UeventParser | undefined;
  private seqnum = 1000;
  private nextDisk = 'b';
  private readonly bound = new Map<string, string[]>();
  private readonly devices = new Map<string, FixtureDevice>();
  /** How long after `authorized=1` the disk appears; 0 binds before the write returns. */
  bindDelayMs = 0;
  /** The udev text delivered so far, for tests that replay it through a real process. */
  transcript = '';

  constructor() {
    mkdirSync(join(this.sys, PCI, 'usb1'), { recursive: true });
    mkdirSync(join(this.sys, 'bus/usb/devices'), { recursive: true });
    mkdirSync(join(this.sys, 'class/block'), { recursive: true });
    mkdirSync(this.dev, { recursive: true });
    writeFileSync(join(this.sys, PCI, 'usb1/authorized_default'), '1\n');
    writeFileSync(join(this.sys, PCI, 'usb1/idVendor'), '1d6b\n');
    symlinkSync(relative(join(this.sys, 'bus/usb/devices'), join(this.sys, PCI, 'usb1')), join(this.sys, 'bus/usb/devices/usb1'));
    writeFileSync(this.mountInfo, '22 1 0:21 / /proc rw,nosuid - proc proc rw\n');
  }

  /**
   * The adapter's one way of writing sysfs files: the write happens, is
   * recorded (`1-1/authorized=0`), and the kernel reacts as it would, binding
   * or removing the device's disk before the write returns.
   */
  readonly writeAttribute = async (path: string, value: string): Promise<void> => {
    writeFileSync(path, value);
    const rel = relative(realpathSync(join(this.sys, PCI, 'usb1')), join(realpathSync(dirname(path)), basename(path)));
    this.writes.push(`${rel.startsWith('..') ? path : rel}=${value.trim()}`);
    const m = /^([\d.-]+)\/authorized$/.exec(rel);
    if (m && this.devices.has(m[1]!)) {
      const name = m[1]!;
      if (value.trim() !== '1') this.unbind(name);
      // A real stick's disk appears 0.4-0.7 s after authorisation; bindDelayMs stands in for that.
      else if (this.bindDelayMs > 0) setTimeout(() => this.authorized(name) === '1' && this.bind(name, true), this.bindDelayMs);
      else this.bind(name, true);
    }
  };

  // ---- UeventSource -------------------------------------------------------

  start(onEvent: (event: Uevent) => void): void {
    this.parser = new UeventParser(onEvent);
  }

  stop(): void {
    this.parser = undefined;
  }

  close(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  // ---- the kernel's side ---------------------------------------------------

  deviceDir(name: string): string {
    return join(this.sys, PCI, 'usb1', name);
  }

  authorizedDefault(): string {
    return readFileSync(join(this.sys, PCI, 'usb1/authorized_default'), 'utf8').trim();
  }

  authorized(name: string): string | undefined {
    const path = join(this.deviceDir(name), 'authorized');
    return existsSync(path) ? readFileSync(path, 'utf8').trim() : undefined;
  }

  /** A device appears on port `name` (`1-1`), authorised or held as authorized_default says. */
  plug(name: string, d: FixtureDevice, emit = true): void {
    const dir = this.deviceDir(name);
    mkdirSync(dir, { recursive: true });
    const attrs: Record<string, string | Buffer> = {
      idVendor: `${d.vendorId.toString(16).padStart(4, '0')}\n`,
      idProduct: `${d.productId.toString(16).padStart(4, '0')}\n`,
      bDeviceClass: `${(d.deviceClass ?? 0).toString(16).padStart(2, '0')}\n`,
      busnum: '1\n',
      devnum: `${this.seqnum % 100}\n`,
      descriptors: rawDescriptors(d),
    };
    for (const key of ['serial', 'manufacturer', 'product'] as const) {
      const v = d[key];
      if (v !== undefined) attrs[key] = Buffer.concat([Buffer.isBuffer(v) ? v : Buffer.from(v), Buffer.from('\n')]);
    }
    for (const [k, v] of Object.entries(attrs)) writeFileSync(join(dir, k), v);
    const authorized = this.authorizedDefault() === '0' ? '0' : '1';
    writeFileSync(join(dir, 'authorized'), `${authorized}\n`);
    symlinkSync(relative(join(this.sys, 'bus/usb/devices'), dir), join(this.sys, 'bus/usb/devices', name));
    this.devices.set(name, d);
    if (emit) this.emitUsb('add', name, d);
    if (authorized === '1') this.bind(name, emit);
  }

  unplug(name: string): void {
    const d = this.devices.get(name);
    if (!d) return;
    this.unbind(name);
    rmSync(join(this.sys, 'bus/usb/devices', name), { force: true });
    rmSync(this.deviceDir(name), { recursive: true, force: true });
    this.devices.delete(name);
    this.emitUsb('remove', name, d);
  }

  /** The disks bound for a device: `sdb`, `sdb1`, ... */
  blockNames(name: string): string[] {
    return this.bound.get(name) ?? [];
  }

  /** A card swapped in a reader: the disk's bytes change and the kernel says so (DISK_MEDIA_CHANGE). */
  changeMedia(name: string, image: string): void {
    const disk = this.bound.get(name)?.[0];
    if (!disk) return;
    rmSync(join(this.dev, disk), { force: true });
    symlinkSync(image, join(this.dev, disk));
    const devpath = `/${PCI}/usb1/${name}/${name}:1.0/host0/target0:0:0/0:0:0:0/block/${disk}`;
    this.emit('change', devpath, 'block', [`DEVNAME=/dev/${disk}`, 'DEVTYPE=disk', 'DISK_MEDIA_CHANGE=1', 'MAJOR=8', 'MINOR=16']);
  }

  /** Pretends the desktop mounted a block device, so the adapter must unmount it. */
  mount(kernelName: string, mountPoint: string): void {
    writeFileSync(
      this.mountInfo,
      `${readFileSync(this.mountInfo, 'utf8')}40 22 8:17 / ${mountPoint.replace(/ /g, '\\040')} rw,nosuid - vfat ${join(this.dev, kernelName)} rw\n`,
    );
  }

  private bind(name: string, emit: boolean): void {
    const d = this.devices.get(name)!;
    if (this.bound.has(name)) return;
    const names: string[] = [];
    d.interfaceClasses.forEach((cls, i) => {
      const iface = join(this.deviceDir(name), `${name}:1.${i}`);
      mkdirSync(iface, { recursive: true });
      writeFileSync(join(iface, 'bInterfaceClass'), `${cls.toString(16).padStart(2, '0')}\n`);
    });
    if (d.disk) {
      const disk = `sd${this.nextDisk}`;
      this.nextDisk = String.fromCharCode(this.nextDisk.charCodeAt(0) + 1);
      const blockDir = join(this.deviceDir(name), `${name}:1.0/host0/target0:0:0/0:0:0:0/block/${disk}`);
      mkdirSync(blockDir, { recursive: true });
      const sectors = Math.floor(readFileSync(d.disk.image).length / 512);
      writeFileSync(join(blockDir, 'size'), `${sectors}\n`);
      symlinkSync(relative(join(this.sys, 'class/block'), blockDir), join(this.sys, 'class/block', disk));
      symlinkSync(d.disk.image, join(this.dev, disk));
      names.push(disk);
      // The kernel reads the MBR and makes a block device of each partition; each gets its slice of the image.
      const image = readFileSync(d.disk.image);
      for (let p = 1; p <= (d.disk.partitions ?? 0); p++) {
        const entry = 446 + (p - 1) * 16;
        const startLba = image.readUInt32LE(entry + 8);
        const sectorCount = image.readUInt32LE(entry + 12);
        const part = join(blockDir, `${disk}${p}`);
        mkdirSync(part, { recursive: true });
        writeFileSync(join(part, 'partition'), `${p}\n`);
        writeFileSync(join(part, 'size'), `${sectorCount}\n`);
        symlinkSync(relative(join(this.sys, 'class/block'), part), join(this.sys, 'class/block', `${disk}${p}`));
        writeFileSync(join(this.dev, `${disk}${p}`), image.subarray(startLba * 512, startLba * 512 + Math.min(sectorCount * 512, 8 * 1024 * 1024)));
        names.push(`${disk}${p}`);
      }
      if (emit) for (const n of names) this.emitBlock('add', name, n);
    }
    this.bound.set(name, names);
  }

  private unbind(name: string): void {
    const names = this.bound.get(name);
    if (!names) return;
    this.bound.delete(name);
    for (const n of [...names].reverse()) {
      rmSync(join(this.sys, 'class/block', n), { force: true });
      rmSync(join(this.dev, n), { force: true });
      this.emitBlock('remove', name, n);
    }
    const d = this.devices.get(name);
    d?.interfaceClasses.forEach((_, i) => rmSync(join(this.deviceDir(name), `${name}:1.${i}`), { recursive: true, force: true }));
  }

  private emitUsb(action: string, name: string, d: FixtureDevice): void {
    const devpath = `/${PCI}/usb1/${name}`;
    this.emit(action, devpath, 'usb', [
      'DEVTYPE=usb_device',
      `DEVNAME=/dev/bus/usb/001/${String(this.seqnum % 100).padStart(3, '0')}`,
      `PRODUCT=${d.vendorId.toString(16)}/${d.productId.toString(16)}/100`,
      `TYPE=${d.deviceClass ?? 0}/0/0`,
      'BUSNUM=001',
      `DEVNUM=${String(this.seqnum % 100).padStart(3, '0')}`,
    ]);
  }

  private emitBlock(action: string, name: string, kernelName: string): void {
    const partition = /\d$/.test(kernelName);
    const devpath = `/${PCI}/usb1/${name}/${name}:1.0/host0/target0:0:0/0:0:0:0/block/${kernelName.replace(/\d+$/, '')}${partition ? `/${kernelName}` : ''}`;
    this.emit(action, devpath, 'block', [`DEVNAME=/dev/${kernelName}`, `DEVTYPE=${partition ? 'partition' : 'disk'}`, 'MAJOR=8', 'MINOR=16', 'ID_BUS=usb']);
  }

  private emit(action: string, devpath: string, subsystem: string, props: string[]): void {
    const seq = this.seqnum++;
    const text = `UDEV  [${(seq / 10).toFixed(6)}] ${action.padEnd(8)} ${devpath} (${subsystem})\nACTION=${action}\nDEVPATH=${devpath}\nSUBSYSTEM=${subsystem}\n${props.join('\n')}\nSEQNUM=${seq}\n\n`;
    this.transcript += text;
    this.parser?.push(text);
  }
}
