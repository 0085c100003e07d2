import { InvigilatorError } from '../../../shared/errors';
import { type ObservedUsbDevice, type OsVolumeView, type StorageDisk, type UsbChange, type UsbPlatform, USB_CLASS, hasInterfaceClass } from '../usb-platform';
import type { CommandRunner } from '../../os/command-runner';
import { usbCommands } from '../os-errors';
import {
  type ApfsContainer,
  DISKUTIL_FILE,
  apfsVolumeView,
  isApfsPartition,
  isSystemPartition,
  parseApfsList,
  parseDiskInfo,
  parseDiskList,
  partitionVolumeView,
} from './diskutil';
import { DISK_OR_SLICE, type DarwinUsbAttachment, IOREG_ARGS, IOREG_FILE, parseIoregUsb } from './ioreg';

export interface DarwinUsbPlatformOptions {
  runner: CommandRunner;
  /** How often the USB tree is listed; 2 s by default. */
  pollMs?: number;
  /** How long storage() and the actions wait for a storage device's disks to appear after it does. */
  diskWaitMs?: number;
  diskWaitStepMs?: number;
  /** Told about a poll that failed; watching goes on. */
  onError?: (error: unknown) => void;
}

export interface DarwinUsbPlatform extends UsbPlatform {
  /** Lists the USB tree now and reports what changed; tests use it instead of waiting for the timer. */
  pollNow(): Promise<void>;
}

export const DEFAULT_POLL_MS = 2000;

/** The only words besides disk identifiers that ever reach diskutil's argument list. */
const DISKUTIL_WORDS = new Set(['list', 'info', 'apfs', '-plist', 'unmountDisk', 'force', 'eject', 'mountDisk', 'mount', 'readOnly']);

function gone(device: ObservedUsbDevice): InvigilatorError {
  return new InvigilatorError('INV_ERR_USB_DEVICE_GONE', `USB device ${device.vendorId}:${device.productId} at ${device.key}`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The macOS adapter. macOS has no switch for "this USB device may not work"
 * short of a system extension, so what it can do is what diskutil can: a
 * blocked stick has its volumes unmounted and its disks ejected, a read-only
 * one is remounted read-only. A keyboard or any other device without disks
 * works by default and cannot be blocked here.
 *
 * Arrivals and removals come from listing the USB tree every `pollMs` and
 * comparing. `diskutil activity` would push disk events, but it reports disks,
 * not USB devices (a keyboard never appears), and a long-lived child printing
 * free text is harder to bound than one plist every two seconds; IOKit
 * notifications would need native code.
 */
export function createDarwinUsbPlatform(options: DarwinUsbPlatformOptions): DarwinUsbPlatform {
  const runner = usbCommands(options.runner);
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const diskWaitMs = options.diskWaitMs ?? 10_000;
  const diskWaitStepMs = options.diskWaitStepMs ?? 500;
  let listener: ((change: UsbChange) => void) | undefined;
  let known = new Map<string, DarwinUsbAttachment>();
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> | undefined;
  let stopped = true;
  // Attachments this adapter made read-only, so that allowing one later remounts it writable.
  const readOnlyKeys = new Set<string>();

  async function listUsb(): Promise<Map<string, DarwinUsbAttachment>> {
    const { stdout, code } = await runner.run(IOREG_FILE, [...IOREG_ARGS]);
    if (code !== 0) throw new InvigilatorError('INV_ERR_USB_OS_COMMAND_FAILED', `ioreg exited with ${code}`);
    return parseIoregUsb(stdout);
  }

  async function diskutil(args: string[]): Promise<{ stdout: string; code: number }> {
    // Belt and braces: identifiers were checked where they were read, and are checked again where they are used.
    for (const arg of args) {
      if (!DISKUTIL_WORDS.has(arg) && !DISK_OR_SLICE.test(arg)) throw new InvigilatorError('INV_ERR_INTERNAL', 'refused a diskutil argument');
    }
    return runner.run(DISKUTIL_FILE, args);
  }

  async function mustDiskutil(args: string[]): Promise<string> {
    const { stdout, code } = await diskutil(args);
    if (code !== 0) throw new InvigilatorError('INV_ERR_USB_OS_COMMAND_FAILED', `diskutil ${args.join(' ')} exited with ${code}`);
    return stdout;
  }

  async function current(device: ObservedUsbDevice): Promise<DarwinUsbAttachment> {
    const attachment = (await listUsb()).get(device.key);
    if (!attachment) throw gone(device);
    return attachment;
  }

  /** A failure while the device is still attached is the command's; once it has gone, it is that. */
  async function guarded<T>(device: ObservedUsbDevice, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (e) {
      if (e instanceof InvigilatorError && e.code === 'INV_ERR_USB_DEVICE_GONE') throw e;
      const present = await listUsb().then(
        (list) => list.has(device.key),
        () => true,
      );
      throw present ? e : gone(device);
    }
  }

  /** The device's whole disks, waiting a bounded time for a storage device's media to be published. */
  async function disksOf(device: ObservedUsbDevice): Promise<string[]> {
    const deadline = Date.now() + diskWaitMs;
    for (;;) {
      const attachment = await current(device);
      const storage = hasInterfaceClass(attachment.device, USB_CLASS.massStorage);
      if (attachment.disks.length > 0 || !storage || Date.now() >= deadline) return attachment.disks;
      await sleep(diskWaitStepMs);
    }
  }

  async function volumesOf(disk: string, apfs: () => Promise<ApfsContainer[]>): Promise<OsVolumeView[]> {
    const partitions = parseDiskList(await mustDiskutil(['list', '-plist', disk]), disk).filter((p) => !isSystemPartition(p));
    const volumes: OsVolumeView[] = [];
    for (const p of partitions) {
      if (isApfsPartition(p)) {
        const container = (await apfs()).find((c) => c.physicalStores.includes(p.device));
        // A container diskutil does not list (damaged, or an APFS it cannot read) tells us nothing.
        if (!container) volumes.push({ device: p.device, filesystem: 'apfs', encrypted: 'unknown', scheme: 'unknown' });
        else volumes.push(...container.volumes.map(apfsVolumeView));
      } else {
        volumes.push(partitionVolumeView(p, parseDiskInfo(await mustDiskutil(['info', '-plist', p.device]))));
      }
    }
    return volumes;
  }

  async function storage(device: ObservedUsbDevice): Promise<StorageDisk[]> {
    return guarded(device, async () => {
      let containers: Promise<ApfsContainer[]> | undefined;
      const apfs = () => (containers ??= mustDiskutil(['apfs', 'list', '-plist']).then(parseApfsList));
      const result: StorageDisk[] = [];
      for (const disk of await disksOf(device)) {
        const info = parseDiskInfo(await mustDiskutil(['info', '-plist', disk]));
        const volumes = await volumesOf(disk, apfs);
        result.push({ device: disk, ...(info?.sizeBytes !== undefined ? { sizeBytes: info.sizeBytes } : {}), volumes });
      }
      return result;
    });
  }

  async function block(device: ObservedUsbDevice): Promise<void> {
    await guarded(device, async () => {
      const disks = await disksOf(device);
      if (disks.length === 0) {
        throw new InvigilatorError('INV_ERR_USB_OS_COMMAND_FAILED', 'macOS can stop a USB device only by ejecting its disks, and this one has none');
      }
      for (const disk of disks) {
        // force: an open file on the stick must not keep it mounted against the policy.
        await mustDiskutil(['unmountDisk', 'force', disk]);
        await mustDiskutil(['eject', disk]);
      }
      readOnlyKeys.delete(device.key);
    });
  }

  async function allow(device: ObservedUsbDevice): Promise<void> {
    await guarded(device, async () => {
      const attachment = await current(device);
      for (const disk of attachment.disks) {
        if (readOnlyKeys.has(device.key)) await mustDiskutil(['unmountDisk', 'force', disk]);
        // Mounting what is already mounted succeeds, so there is no need to look first.
        await mustDiskutil(['mountDisk', disk]);
      }
      readOnlyKeys.delete(device.key);
    });
  }

  async function readOnly(device: ObservedUsbDevice): Promise<void> {
    const disks = await storage(device);
    if (disks.length === 0) throw new InvigilatorError('INV_ERR_USB_READONLY_UNSUPPORTED', 'the device has no disks to mount read-only');
    await guarded(device, async () => {
      for (const disk of disks) {
        await mustDiskutil(['unmountDisk', 'force', disk.device]);
        // Only volumes with a filesystem macOS reads can be mounted; the rest stay unmounted.
        for (const volume of disk.volumes) if (volume.filesystem !== undefined) await mustDiskutil(['mount', 'readOnly', volume.device]);
      }
      readOnlyKeys.add(device.key);
    });
  }

  async function pollOnce(): Promise<void> {
    const next = await listUsb();
    const changes: UsbChange[] = [];
    for (const [key, attachment] of known) if (!next.has(key)) changes.push({ kind: 'removed', device: attachment.device });
    for (const [key, attachment] of next) if (!known.has(key)) changes.push({ kind: 'arrived', device: attachment.device });
    known = next;
    for (const key of readOnlyKeys) if (!next.has(key)) readOnlyKeys.delete(key);
    if (!stopped) for (const change of changes) listener?.(change);
  }

  function poll(): Promise<void> {
    polling ??= pollOnce().finally(() => {
      polling = undefined;
    });
    return polling;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      poll()
        .catch((e: unknown) => options.onError?.(e))
        .finally(schedule);
    }, pollMs);
    timer.unref();
  }

  return {
    platform: 'darwin',
    canReadOnly: true,
    async start(l) {
      listener = l;
      known = await listUsb();
      stopped = false;
      schedule();
      return [...known.values()].map((a) => a.device);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await polling?.catch(() => undefined);
      listener = undefined;
    },
    async pollNow() {
      // A poll already under way may have listed the tree before the change the caller is asking about.
      await polling?.catch(() => undefined);
      await poll();
    },
    storage,
    allow,
    block,
    readOnly,
  };
}
