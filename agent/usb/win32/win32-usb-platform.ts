import { InvigilatorError } from '../../../shared/errors';
import type { ObservedUsbDevice, StorageDisk, UsbChange, UsbPlatform } from '../usb-platform';
import { parseActionResult, parseDeviceList, parseStorage } from './parsers';
import type { PowerShellSession } from '../../os/win32/powershell-session';
import { usbSession } from '../os-errors';
import { LIST_USB, allowScript, blockScript, readOnlyScript, storageScript } from './scripts';

/** What the adapter logs with; a winston Logger from node-common/logging fits. */
export interface Win32UsbLogger {
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

export interface Win32UsbPlatformOptions {
  /** The agent's one PowerShell session, shared with software control; the composition root owns (and closes) it. */
  session: PowerShellSession;
  /** How often the device list is read; Windows offers Node no cheap arrival event. */
  pollMs?: number;
  /** How long storage() waits for a stick's disk to appear after the device itself. */
  storageWaitMs?: number;
  logger?: Win32UsbLogger;
}

export const DEFAULT_POLL_MS = 2000;
export const DEFAULT_STORAGE_WAIT_MS = 5000;
const STORAGE_RETRY_MS = 250;

/**
 * Windows: the PnP device list, polled through one PowerShell session and
 * diffed into arrivals and removals; actions through the PnP cmdlets. The
 * key of a device is its PnP instance id as Windows reported it, and only
 * such keys are ever put into a script.
 */
export class Win32UsbPlatform implements UsbPlatform {
  readonly platform = 'win32' as const;
  readonly canReadOnly = true;
  private readonly session: Pick<PowerShellSession, 'run'>;
  private readonly pollMs: number;
  private readonly storageWaitMs: number;
  private readonly logger: Win32UsbLogger | undefined;
  private listener: ((change: UsbChange) => void) | undefined;
  private known = new Map<string, ObservedUsbDevice>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(options: Win32UsbPlatformOptions) {
    this.session = usbSession(options.session);
    this.pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    this.storageWaitMs = options.storageWaitMs ?? DEFAULT_STORAGE_WAIT_MS;
    this.logger = options.logger;
  }

  async start(listener: (change: UsbChange) => void): Promise<ObservedUsbDevice[]> {
    const devices = await this.list();
    this.known = new Map(devices.map((d) => [d.key, d]));
    this.listener = listener;
    this.timer = setInterval(() => void this.pollNow(), this.pollMs);
    this.timer.unref();
    return devices;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.listener = undefined;
    await this.polling;
  }

  /** Reads the device list now and reports what changed; a poll already running is joined, not doubled. */
  pollNow(): Promise<void> {
    this.polling ??= this.poll().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  private async poll(): Promise<void> {
    if (!this.listener) return;
    let devices: ObservedUsbDevice[];
    try {
      devices = await this.list();
    } catch (e) {
      // One failed read must not end watching; the next poll tries again.
      this.logger?.warn('reading the USB device list failed', { error: e instanceof Error ? e.message : String(e) });
      return;
    }
    const now = new Map(devices.map((d) => [d.key, d]));
    const changes: UsbChange[] = [];
    for (const [key, device] of this.known) if (!now.has(key)) changes.push({ kind: 'removed', device });
    for (const [key, device] of now) if (!this.known.has(key)) changes.push({ kind: 'arrived', device });
    this.known = now;
    for (const change of changes) this.listener?.(change);
  }

  private async list(): Promise<ObservedUsbDevice[]> {
    return parseDeviceList(await this.session.run(LIST_USB));
  }

  async storage(device: ObservedUsbDevice): Promise<StorageDisk[]> {
    const script = storageScript(this.checkedKey(device));
    const deadline = Date.now() + this.storageWaitMs;
    for (;;) {
      const { present, disks } = parseStorage(await this.session.run(script));
      // A stick's disk appears some hundreds of milliseconds after the stick; a device without storage never shows one.
      if (!present || disks.length > 0 || Date.now() >= deadline) return disks;
      await new Promise((r) => setTimeout(r, STORAGE_RETRY_MS));
    }
  }

  async allow(device: ObservedUsbDevice): Promise<void> {
    await this.act(device, allowScript);
  }

  async block(device: ObservedUsbDevice): Promise<void> {
    await this.act(device, blockScript);
  }

  async readOnly(device: ObservedUsbDevice): Promise<void> {
    await this.act(device, readOnlyScript);
  }

  private async act(device: ObservedUsbDevice, build: (instanceId: string) => string): Promise<void> {
    const script = build(this.checkedKey(device));
    if (parseActionResult(await this.session.run(script)) === 'gone') {
      throw new InvigilatorError('INV_ERR_USB_DEVICE_GONE', `${device.vendorId}:${device.productId}`);
    }
  }

  /**
   * Only instance ids in Windows' latest list reach a script (scripts.ts
   * validates and quotes them again); a key that is not there has gone, or
   * never came from Windows.
   */
  private checkedKey(device: ObservedUsbDevice): string {
    if (!this.known.has(device.key)) throw new InvigilatorError('INV_ERR_USB_DEVICE_GONE', 'not attached according to the latest device list');
    return device.key;
  }
}

export function createWin32UsbPlatform(options: Win32UsbPlatformOptions): Win32UsbPlatform {
  return new Win32UsbPlatform(options);
}
