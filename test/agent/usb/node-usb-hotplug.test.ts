import { existsSync } from 'node:fs';
import { NodeUsbHotplug, type WebUsbEvents } from '../../../agent/usb/node-usb-hotplug';
import { silentLogger } from '../../support/harness';

/**
 * node-usb 3's WebUSB object as far as the signal uses it. The real module
 * cannot produce an event on a machine without a USB bus, so a stand-in
 * dispatches them; the real module is loaded in the last test.
 */
class WebUsbStandIn extends EventTarget implements WebUsbEvents {
  listing: () => Promise<unknown[]> = async () => [];
  getDevices(): Promise<unknown[]> {
    return this.listing();
  }
  plug(): void {
    this.dispatchEvent(new Event('connect'));
  }
  pull(): void {
    this.dispatchEvent(new Event('disconnect'));
  }
}

describe('the node-usb hotplug signal', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('turns a burst of attach and detach events into one look once the burst has settled', async () => {
    const usb = new WebUsbStandIn();
    const hotplug = new NodeUsbHotplug(silentLogger(), () => usb, 50);
    let looks = 0;
    expect(await hotplug.start(() => looks++)).toBe(true);
    usb.plug();
    usb.plug();
    jest.advanceTimersByTime(30);
    usb.pull();
    expect(looks).toBe(0);
    jest.advanceTimersByTime(50);
    expect(looks).toBe(1);
    hotplug.stop();
    usb.plug();
    jest.advanceTimersByTime(100);
    expect(looks).toBe(1);
  });

  it('reports itself unavailable, without throwing, when libusb cannot list devices', async () => {
    const usb = new WebUsbStandIn();
    usb.listing = async () => {
      throw new Error('getDevices error: /sys/bus/usb/devices/ not found (errno 2)');
    };
    const hotplug = new NodeUsbHotplug(silentLogger(), () => usb);
    expect(await hotplug.start(() => undefined)).toBe(false);
  });

  it('loads the real node-usb here and starts exactly when this machine has a USB bus', async () => {
    jest.useRealTimers();
    const hotplug = new NodeUsbHotplug(silentLogger());
    expect(await hotplug.start(() => undefined)).toBe(existsSync('/sys/bus/usb/devices'));
    hotplug.stop();
  });
});
