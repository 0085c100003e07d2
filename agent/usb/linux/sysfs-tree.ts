import { readFile, readdir, realpath, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { descriptorTextFromUtf8, hex4 } from '../../../shared/usb/descriptor-text';
import type { ObservedUsbDevice } from '../usb-platform';
import { parseUsbDescriptors } from './usb-descriptors';

/** Where the kernel's views live; tests point these at a fixture tree. */
export interface LinuxRoots {
  /** `/sys` */
  sys: string;
  /** `/dev` */
  dev: string;
}

/** A USB device's sysfs name: `1-2`, `3-1.4.2`. Root hubs (`usb1`) and interfaces (`1-2:1.0`) are not devices to decide. */
export const USB_DEVICE_NAME = /^\d{1,3}-\d{1,3}(\.\d{1,3}){0,6}$/;
const BLOCK_NAME = /^[a-z][a-z0-9]{0,31}$/;

async function readSmall(path: string, max = 4096): Promise<Buffer | undefined> {
  try {
    const b = await readFile(path);
    return b.subarray(0, max);
  } catch {
    return undefined;
  }
}

async function readText(path: string): Promise<string | undefined> {
  const b = await readSmall(path);
  return b === undefined ? undefined : b.toString('latin1').trim();
}

export type WriteAttribute = (path: string, value: string) => Promise<void>;

export class SysfsTree {
  constructor(
    readonly roots: LinuxRoots,
    private readonly writeAttribute: WriteAttribute = (path, value) => writeFile(path, value),
  ) {}

  deviceDir(name: string): string {
    return join(this.roots.sys, 'bus/usb/devices', name);
  }

  async exists(name: string): Promise<boolean> {
    return stat(this.deviceDir(name)).then(
      () => true,
      () => false,
    );
  }

  /** USB devices attached now, root hubs and interfaces aside. */
  async deviceNames(): Promise<string[]> {
    const names = await readdir(join(this.roots.sys, 'bus/usb/devices')).catch(() => [] as string[]);
    return names.filter((n) => USB_DEVICE_NAME.test(n)).sort();
  }

  async rootHubs(): Promise<string[]> {
    const names = await readdir(join(this.roots.sys, 'bus/usb/devices')).catch(() => [] as string[]);
    return names.filter((n) => /^usb\d{1,3}$/.test(n)).sort();
  }

  /** The sysfs name of the device at a udev DEVPATH, when it is a USB device. */
  nameForDevpath(devpath: string): string | undefined {
    const name = basename(devpath);
    return USB_DEVICE_NAME.test(name) ? name : undefined;
  }

  /** Reads a device as the rule sees it; undefined when it has gone or is not a USB device. */
  async readDevice(name: string): Promise<ObservedUsbDevice | undefined> {
    if (!USB_DEVICE_NAME.test(name)) return undefined;
    const dir = this.deviceDir(name);
    const raw = await readSmall(join(dir, 'descriptors'), 64 * 1024);
    const parsed = raw ? parseUsbDescriptors(raw) : undefined;
    const vendorId = hex4(parsed?.vendorId ?? (await readText(join(dir, 'idVendor'))));
    const productId = hex4(parsed?.productId ?? (await readText(join(dir, 'idProduct'))));
    if (!vendorId || !productId) return undefined;
    const deviceClass = parsed?.deviceClass ?? parseInt((await readText(join(dir, 'bDeviceClass'))) ?? '0', 16);
    const fromDirs = parsed ? [] : await this.interfaceClassesFromDirs(name);
    const interfaceClasses = parsed?.interfaceClasses ?? fromDirs;
    // A held device has no interface directories: without whole descriptors nothing is known about it.
    const descriptorsIncomplete = parsed ? !parsed.complete : fromDirs.length === 0;
    const devnum = await readText(join(dir, 'devnum'));
    const text = async (attr: string) => {
      const b = await readSmall(join(dir, attr), 1024);
      return b ? descriptorTextFromUtf8(b) : undefined;
    };
    const [serial, manufacturer, product, busnum] = await Promise.all([text('serial'), text('manufacturer'), text('product'), readText(join(dir, 'busnum'))]);
    return {
      key: name,
      vendorId,
      productId,
      deviceClass: Number.isInteger(deviceClass) && deviceClass >= 0 && deviceClass <= 255 ? deviceClass : 0,
      interfaceClasses,
      ...(serial ? { serial } : {}),
      ...(manufacturer ? { manufacturer } : {}),
      ...(product ? { product } : {}),
      ...(busnum && /^\d{1,3}$/.test(busnum) ? { bus: busnum } : {}),
      port: name,
      ...(descriptorsIncomplete ? { descriptorsIncomplete } : {}),
      ...(busnum && devnum ? { instance: `${busnum}:${devnum}` } : {}),
    };
  }

  private async interfaceClassesFromDirs(name: string): Promise<number[]> {
    const dir = this.deviceDir(name);
    const entries = await readdir(dir).catch(() => [] as string[]);
    const classes: number[] = [];
    for (const e of entries.filter((x) => x.startsWith(`${name}:`)).sort()) {
      const c = parseInt((await readText(join(dir, e, 'bInterfaceClass'))) ?? '', 16);
      if (Number.isInteger(c) && c >= 0 && c <= 255) classes.push(c);
    }
    return classes.slice(0, 64);
  }

  /** The bus and device number now at this port: a new attachment gets a new device number. */
  async instance(name: string): Promise<string | undefined> {
    const dir = this.deviceDir(name);
    const [busnum, devnum] = await Promise.all([readText(join(dir, 'busnum')), readText(join(dir, 'devnum'))]);
    return busnum && devnum ? `${busnum}:${devnum}` : undefined;
  }

  async authorized(name: string): Promise<boolean> {
    return (await readText(join(this.deviceDir(name), 'authorized'))) !== '0';
  }

  /** The writes that control devices; each is one small write to a file the kernel owns. */
  async write(path: string, value: string): Promise<void> {
    await this.writeAttribute(path, value);
  }

  /** Block devices (disks and their partitions) that sit under a USB device in the device tree. */
  async blockDevicesOf(name: string): Promise<Array<{ kernelName: string; partition: boolean; sizeBytes: number }>> {
    const deviceReal = await realpath(this.deviceDir(name)).catch(() => undefined);
    if (!deviceReal) return [];
    const classDir = join(this.roots.sys, 'class/block');
    const out: Array<{ kernelName: string; partition: boolean; sizeBytes: number }> = [];
    for (const kernelName of await readdir(classDir).catch(() => [] as string[])) {
      if (!BLOCK_NAME.test(kernelName)) continue;
      const real = await realpath(join(classDir, kernelName)).catch(() => undefined);
      if (!real?.startsWith(`${deviceReal}/`)) continue;
      const sectors = Number((await readText(join(real, 'size'))) ?? '0');
      const partition = await stat(join(real, 'partition')).then(
        () => true,
        () => false,
      );
      out.push({ kernelName, partition, sizeBytes: Number.isSafeInteger(sectors) ? sectors * 512 : 0 });
    }
    return out.sort((a, b) => a.kernelName.localeCompare(b.kernelName));
  }

  devNode(kernelName: string): string {
    return join(this.roots.dev, kernelName);
  }
}
