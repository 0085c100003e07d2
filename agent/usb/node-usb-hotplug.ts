import type { Logger } from '../../node-common/logging';
import type { HotplugSignal } from './usb-platform';

/** The part of node-usb 3's WebUSB object this uses: device arrival and removal events, and a listing to prove it works. */
export interface WebUsbEvents {
  getDevices(): Promise<unknown[]>;
  addEventListener(type: 'connect' | 'disconnect', listener: () => void): void;
  removeEventListener(type: 'connect' | 'disconnect', listener: () => void): void;
}

/** node-usb 3 (a native module): loaded only when used, so a machine without its binary still runs the agent. */
export function loadNodeUsb(): WebUsbEvents {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('usb') as { usb: WebUsbEvents }).usb;
}

/**
 * node-usb's hotplug events, used as a signal only: "something changed on the
 * USB bus, look again". The OS adapter's own view stays the truth (it knows
 * disks, drivers and authorisation, which libusb does not), but Windows and
 * macOS adapters poll, and this lets them notice a stick in milliseconds
 * rather than at the next poll. Where libusb cannot start (no USB bus, no
 * permission) the agent goes on with polling alone and says so once.
 */
export class NodeUsbHotplug implements HotplugSignal {
  private usb: WebUsbEvents | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listener = () => this.changed();
  private onChange: (() => void) | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly load: () => WebUsbEvents = loadNodeUsb,
    /** Events for one composite device come in a burst: one look after the burst is enough. */
    private readonly settleMs = 50,
  ) {}

  /** True when hotplug events are flowing; false when node-usb cannot run here. */
  async start(onChange: () => void): Promise<boolean> {
    try {
      const usb = this.load();
      await usb.getDevices();
      usb.addEventListener('connect', this.listener);
      usb.addEventListener('disconnect', this.listener);
      this.usb = usb;
      this.onChange = onChange;
      return true;
    } catch (e) {
      this.logger.warn('node-usb hotplug is not available here; relying on the OS view alone', { error: String(e).slice(0, 300) });
      return false;
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    this.usb?.removeEventListener('connect', this.listener);
    this.usb?.removeEventListener('disconnect', this.listener);
    this.usb = undefined;
    this.onChange = undefined;
  }

  private changed(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onChange?.(), this.settleMs);
  }
}
