import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvigilatorError } from '../../../shared/errors';
import type { Logger } from '../../../node-common/logging';
import { type CommandRunner, createExecFileRunner } from '../../os/command-runner';
import { backoffDelay } from '../../core/backoff';
import { usbCommands } from '../os-errors';
import { FileByteSource } from '../file-byte-source';
import { type ObservedUsbDevice, type StorageDisk, USB_CLASS, type UsbChange, type UsbPlatform, hasInterfaceClass } from '../usb-platform';
import { type LinuxRoots, SysfsTree, USB_DEVICE_NAME, type WriteAttribute } from './sysfs-tree';
import { type Uevent, type UeventSource, UdevadmMonitor } from './uevent-source';

/** Runs a program with arguments (never through a shell); rejects with a coded error when it fails. */
export type RunProgram = (file: string, args: readonly string[]) => Promise<void>;

export function programRunner(runner: CommandRunner = createExecFileRunner({ maxOutputBytes: 64 * 1024, defaultTimeoutMs: 10_000 })): RunProgram {
  const usb = usbCommands(runner);
  return async (file, args) => {
    const { code } = await usb.run(file, [...args]);
    if (code !== 0) throw new InvigilatorError('INV_ERR_USB_OS_COMMAND_FAILED', `${file} ${args.join(' ').slice(0, 200)} exited with ${code}`);
  };
}

export const runProgram = programRunner();

export interface LinuxUsbOptions {
  roots: LinuxRoots;
  /** `/proc/self/mountinfo`, to find what must be unmounted before a block. */
  mountInfo: string;
  /** Where allow markers go; the udev rule the installer ships tests for them (`/run/invigilator/usb-allowed`). */
  allowedDir: string;
  /** Hold new devices (authorized_default=0 on every root hub) until decided, as USBGuard does. */
  holdNewDevices: boolean;
  events?: UeventSource;
  run?: RunProgram;
  programs?: { umount: string; udevadm: string; blockdev: string };
  /** How long `storage` waits for the disks of a just-authorised stick (0.4-0.7 s on the QEMU rig). */
  diskWaitMs?: number;
  logger?: Logger;
  /** How sysfs attributes are written; tests observe every write through this. */
  writeAttribute?: WriteAttribute;
}

const DEFAULT_PROGRAMS = { umount: 'umount', udevadm: 'udevadm', blockdev: 'blockdev' };

/**
 * USB control on Linux through sysfs, the way USBGuard does it: with
 * `authorized_default=0` on the root hubs a new device enumerates but no
 * driver binds, so nothing can type, mount or be read until the agent writes
 * `authorized=1`. A storage device is authorised to be read, while the udev
 * rule keeps the desktop from mounting it; allowing it writes a marker the
 * rule tests and re-triggers udev, blocking unmounts anything mounted and
 * writes `authorized=0`, which removes the disk in 60-90 ms.
 */
export class LinuxUsbPlatform implements UsbPlatform {
  readonly platform = 'linux' as const;
  readonly canReadOnly = true;
  private readonly tree: SysfsTree;
  private readonly events: UeventSource;
  private readonly run: RunProgram;
  private readonly programs: { umount: string; udevadm: string; blockdev: string };
  private readonly attached = new Map<string, ObservedUsbDevice>();
  private readonly savedDefaults = new Map<string, string>();
  /** Storage devices allowed with the media they had: new media under them is reported for a fresh decision. */
  private readonly allowedKeys = new Set<string>();
  private listener: ((change: UsbChange) => void) | undefined;
  private blockWaiters: Array<() => void> = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: LinuxUsbOptions) {
    this.tree = new SysfsTree(options.roots, options.writeAttribute);
    this.events = options.events ?? new UdevadmMonitor();
    this.run = options.run ?? runProgram;
    this.programs = options.programs ?? DEFAULT_PROGRAMS;
  }

  async start(listener: (change: UsbChange) => void): Promise<ObservedUsbDevice[]> {
    this.listener = listener;
    this.stopped = false;
    // Markers from an earlier run name kernel devices that may now be other sticks.
    await this.clearMarkers().catch((e: unknown) => {
      // Only enforcing needs them; an observing agent run by a developer may not own /run.
      if (this.options.holdNewDevices) throw e;
      this.options.logger?.warn('USB allow markers cannot be written; observing only', { dir: this.options.allowedDir, error: String(e) });
    });
    if (this.options.holdNewDevices) {
      for (const hub of await this.tree.rootHubs()) {
        const path = join(this.tree.deviceDir(hub), 'authorized_default');
        const before = (await readFile(path, 'latin1').catch(() => '1')).trim();
        this.savedDefaults.set(path, before);
        await this.tree.write(path, '0');
      }
    }
    // Watch before listing, so a device that arrives in between is seen (twice at worst; the map dedupes).
    this.watch(0);
    const present: ObservedUsbDevice[] = [];
    for (const name of await this.tree.deviceNames()) {
      const device = await this.tree.readDevice(name);
      if (!device) continue;
      this.attached.set(name, device);
      present.push(device);
    }
    return present;
  }

  /**
   * Starts the udev monitor, and starts it again if it dies: while it is down,
   * new devices stay held and unseen, keyboards included. After a restart,
   * sysfs is compared with what is known, for whatever came and went meanwhile.
   */
  private watch(restarts: number): void {
    if (this.stopped) return;
    this.events.start(
      (e) => void this.onUevent(e),
      (reason) => {
        if (this.stopped) return;
        const delay = backoffDelay(restarts, 1000, 60_000);
        this.options.logger?.warn('USB arrivals cannot be watched; trying again', { reason, retryInMs: delay });
        this.restartTimer = setTimeout(() => {
          this.watch(restarts + 1);
          this.pollNow().catch(() => undefined);
        }, delay);
        this.restartTimer.unref();
      },
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.events.stop();
    this.listener = undefined;
    // A clean stop gives the machine back its usual behaviour; after a crash devices stay held until the agent is back.
    for (const [path, value] of this.savedDefaults) await this.tree.write(path, value).catch(() => undefined);
    this.savedDefaults.clear();
  }

  /**
   * Compares sysfs with what is known. udev reports every change; this catches
   * what it could not while its monitor was down (run when the monitor is
   * started again) and whatever a caller asks to be looked at again.
   */
  async pollNow(): Promise<void> {
    if (this.stopped || !this.listener) return;
    const names = new Set(await this.tree.deviceNames());
    for (const [name, device] of [...this.attached]) {
      if (names.has(name)) continue;
      this.attached.delete(name);
      this.listener?.({ kind: 'removed', device });
    }
    for (const name of names) {
      if (this.attached.has(name)) continue;
      const device = await this.tree.readDevice(name);
      if (!device || this.attached.has(name)) continue;
      this.attached.set(name, device);
      this.listener?.({ kind: 'arrived', device });
    }
  }

  private async onUevent(e: Uevent): Promise<void> {
    if (this.stopped) return;
    if (e.subsystem === 'block') {
      const waiters = this.blockWaiters;
      this.blockWaiters = [];
      for (const w of waiters) w();
      if (e.action === 'remove' && e.devname)
        await rm(join(this.options.allowedDir, e.devname.replace(/^\/dev\//, '')), { force: true }).catch(() => undefined);
      // New media under an allowed device (a card swapped in a reader, a partition appearing) has not been judged.
      const owner = usbOwner(e.devpath);
      const mediaChanged = e.action === 'add' || (e.action === 'change' && e.properties.get('DISK_MEDIA_CHANGE') === '1');
      if (owner && mediaChanged && this.allowedKeys.delete(owner)) {
        const device = this.attached.get(owner);
        if (device) this.listener?.({ kind: 'media-changed', device });
      }
      return;
    }
    if (e.subsystem !== 'usb' || e.devtype !== 'usb_device') return;
    // A root hub that appears later (a dock, a controller reset) must hold its devices too.
    const hub = /\/(usb\d{1,3})$/.exec(e.devpath)?.[1];
    if (hub && e.action === 'add' && this.options.holdNewDevices) {
      const path = join(this.tree.deviceDir(hub), 'authorized_default');
      await this.tree.write(path, '0').catch((err: unknown) => this.options.logger?.error('could not hold a new root hub', { hub, error: String(err) }));
      if (!this.savedDefaults.has(path)) this.savedDefaults.set(path, '1');
      return;
    }
    const name = this.tree.nameForDevpath(e.devpath);
    if (!name) return;
    if (e.action === 'add') {
      if (this.attached.has(name)) return;
      const device = await this.tree.readDevice(name);
      if (!device) return;
      this.attached.set(name, device);
      this.listener?.({ kind: 'arrived', device });
    } else if (e.action === 'remove') {
      const device = this.attached.get(name);
      this.attached.delete(name);
      this.allowedKeys.delete(name);
      if (device) this.listener?.({ kind: 'removed', device });
    }
  }

  private async present(device: ObservedUsbDevice): Promise<void> {
    const sameAttachment = device.instance === undefined || (await this.tree.instance(device.key)) === device.instance;
    if (!this.attached.has(device.key) || !(await this.tree.exists(device.key)) || !sameAttachment) {
      throw new InvigilatorError('INV_ERR_USB_DEVICE_GONE', `USB device ${device.key}`);
    }
  }

  async storage(device: ObservedUsbDevice): Promise<StorageDisk[]> {
    const blocks = await this.boundBlockDevices(device);
    const open = (kernelName: string) => () => FileByteSource.open(this.tree.devNode(kernelName));
    return blocks
      .filter((b) => !b.partition)
      .map((b) => ({
        device: `/dev/${b.kernelName}`,
        sizeBytes: b.sizeBytes,
        open: open(b.kernelName),
        partitions: blocks
          .filter((p) => p.partition && p.kernelName.startsWith(b.kernelName))
          .map((p) => ({ device: `/dev/${p.kernelName}`, sizeBytes: p.sizeBytes, open: open(p.kernelName) })),
        volumes: [],
      }));
  }

  /** Authorises a held storage device so its disk appears (the udev rule keeps it unmounted) and waits, bounded, for the disk. */
  private async boundBlockDevices(device: ObservedUsbDevice) {
    await this.present(device);
    if (!(await this.tree.authorized(device.key))) await this.tree.write(join(this.tree.deviceDir(device.key), 'authorized'), '1');
    const deadline = Date.now() + (this.options.diskWaitMs ?? 5000);
    let blocks = await this.tree.blockDevicesOf(device.key);
    while (!blocks.some((b) => !b.partition) && Date.now() < deadline && !this.stopped) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 25);
        this.blockWaiters.push(() => (clearTimeout(timer), resolve()));
      });
      await this.present(device);
      blocks = await this.tree.blockDevicesOf(device.key);
    }
    return blocks;
  }

  async allow(device: ObservedUsbDevice): Promise<void> {
    await this.present(device);
    // A stick allowed without being read (allowlisted, or again after a block) gets its disk 0.4-0.7 s after
    // authorisation: wait for it, or the markers would be written for nothing and the volumes stay hidden.
    if (hasInterfaceClass(device, USB_CLASS.massStorage)) await this.boundBlockDevices(device);
    else if (!(await this.tree.authorized(device.key))) await this.tree.write(join(this.tree.deviceDir(device.key), 'authorized'), '1');
    await this.release(device);
    this.allowedKeys.add(device.key);
  }

  async readOnly(device: ObservedUsbDevice): Promise<void> {
    const blocks = await this.boundBlockDevices(device);
    // Before anything mounts: blockdev --setro then gives a read-only mount (seen on the QEMU rig).
    for (const b of blocks) await this.run(this.programs.blockdev, ['--setro', this.tree.devNode(b.kernelName)]);
    await this.release(device);
    this.allowedKeys.add(device.key);
  }

  async block(device: ObservedUsbDevice): Promise<void> {
    this.allowedKeys.delete(device.key);
    await this.present(device);
    const blocks = await this.tree.blockDevicesOf(device.key);
    const nodes = new Set(blocks.map((b) => this.tree.devNode(b.kernelName)));
    // De-authorising under a mount leaves a stale mount, so unmount first.
    for (const mountPoint of await this.mountPointsOf(nodes)) {
      await this.run(this.programs.umount, [mountPoint]).catch((e: unknown) =>
        this.options.logger?.warn('could not unmount before blocking', { mountPoint, error: String(e) }),
      );
    }
    for (const b of blocks) await rm(join(this.options.allowedDir, b.kernelName), { force: true });
    // Written even when the device is held already: the block must not depend on authorized_default still being 0.
    await this.tree.write(join(this.tree.deviceDir(device.key), 'authorized'), '0');
  }

  /** Lets udev hand the device's volumes to the desktop: a marker per block device, then a change event. */
  private async release(device: ObservedUsbDevice): Promise<void> {
    const blocks = await this.tree.blockDevicesOf(device.key);
    for (const b of blocks) await writeFile(join(this.options.allowedDir, b.kernelName), `${device.vendorId}:${device.productId}\n`, { mode: 0o644 });
    for (const b of blocks) await this.run(this.programs.udevadm, ['trigger', '--action=change', '--subsystem-match=block', `--sysname-match=${b.kernelName}`]);
  }

  /** Only marker files go: the folder is configurable, and a mistaken path must not cost anyone their files. */
  private async clearMarkers(): Promise<void> {
    await mkdir(this.options.allowedDir, { recursive: true, mode: 0o755 });
    for (const name of await readdir(this.options.allowedDir)) {
      if (/^[a-z][a-z0-9]{0,31}$/.test(name)) await rm(join(this.options.allowedDir, name), { force: true });
    }
  }

  private async mountPointsOf(nodes: Set<string>): Promise<string[]> {
    const text = await readFile(this.options.mountInfo, 'utf8').catch(() => '');
    const points: string[] = [];
    for (const line of text.split('\n')) {
      const [left, right] = line.split(' - ');
      if (!left || !right) continue;
      const mountPoint = left.split(' ')[4];
      const source = right.split(' ')[1];
      if (mountPoint && source && nodes.has(unescapeMountField(source))) points.push(unescapeMountField(mountPoint));
    }
    return points;
  }
}

/** The USB device a block device sits under: the last USB device name in its path (a hub chain has several). */
function usbOwner(devpath: string): string | undefined {
  return devpath
    .split('/')
    .filter((segment) => USB_DEVICE_NAME.test(segment))
    .pop();
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
