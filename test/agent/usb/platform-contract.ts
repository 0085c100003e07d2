import { InvigilatorError } from '../../../shared/errors';
import { assessStorage } from '../../../agent/usb/storage-assessment';
import type { ObservedUsbDevice, UsbChange, UsbPlatform } from '../../../agent/usb/usb-platform';

/**
 * The devices every rig can attach. Each OS rig backs them with what that OS
 * would show (a sysfs tree, recorded PowerShell or diskutil output).
 * - `present-at-start`: a plain FAT stick already attached when watching starts
 * - `plain-stick`: a SanDisk Cruzer Blade (0781:5567, serial 4C530001230101110453), one FAT32 volume
 * - `encrypted-stick`: a stick whose one volume the OS or its bytes show as encrypted (LUKS2, BitLocker To Go, APFS encrypted)
 * - `keyboard`: a plain USB keyboard, interface class 3, no storage
 * - `hostile-strings`: a device whose manufacturer and product strings carry markup, control characters, 4 KB and broken UTF-16
 */
export type RigDevice = 'present-at-start' | 'plain-stick' | 'encrypted-stick' | 'keyboard' | 'hostile-strings';

export type RigEffect = 'none' | 'allowed' | 'blocked' | 'readonly';

export interface UsbPlatformRig {
  platform: UsbPlatform;
  /** Makes the OS show the device as attached and delivers the OS's arrival notification. */
  plug(device: Exclude<RigDevice, 'present-at-start'>): Promise<void>;
  /** Makes the device vanish and delivers the OS's removal notification. */
  unplug(device: RigDevice): Promise<void>;
  /** What the OS now does with the device, read back from the rig's record of effects (sysfs writes, commands run). */
  effect(device: RigDevice): RigEffect;
  close(): Promise<void>;
}

/** Waits for a change the rig has delivered; bounded so a broken adapter fails the test instead of hanging it. */
async function nextChange(changes: UsbChange[], predicate: (c: UsbChange) => boolean): Promise<UsbChange> {
  for (let i = 0; i < 1000; i++) {
    const found = changes.find(predicate);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no matching change among ${changes.length} delivered`);
}

/** Every OS adapter passes this suite; `makeRig` builds a fresh rig with `present-at-start` attached. */
export function usbPlatformContract(name: string, makeRig: () => Promise<UsbPlatformRig>): void {
  describe(`the ${name} USB adapter (contract)`, () => {
    let rig: UsbPlatformRig;
    let changes: UsbChange[];
    let present: ObservedUsbDevice[];

    beforeEach(async () => {
      rig = await makeRig();
      changes = [];
      present = await rig.platform.start((c) => changes.push(c));
    });
    afterEach(async () => {
      await rig.platform.stop();
      await rig.close();
    });

    const arrived = async (vendorId: string, productId: string) =>
      (await nextChange(changes, (c) => c.kind === 'arrived' && c.device.vendorId === vendorId && c.device.productId === productId)).device;

    it('reports a stick that was attached before watching began', () => {
      const storage = present.filter((d) => d.interfaceClasses.includes(8) || d.deviceClass === 8);
      expect(storage).toHaveLength(1);
      expect(storage[0]!.vendorId).toMatch(/^[0-9a-f]{4}$/);
    });

    it('reports an arrival with ids, serial, classes and strings', async () => {
      await rig.plug('plain-stick');
      const device = await arrived('0781', '5567');
      expect(device).toMatchObject({ vendorId: '0781', productId: '5567', serial: '4C530001230101110453' });
      expect(device.interfaceClasses).toContain(8);
      expect(device.key.length).toBeGreaterThan(0);
      expect(typeof device.product).toBe('string');
    });

    it('reports a removal with the same key as the arrival', async () => {
      await rig.plug('plain-stick');
      const device = await arrived('0781', '5567');
      await rig.unplug('plain-stick');
      const removed = await nextChange(changes, (c) => c.kind === 'removed');
      expect(removed.device.key).toBe(device.key);
    });

    it('shows a plain stick as unencrypted and an encrypted one as encrypted', async () => {
      await rig.plug('plain-stick');
      await rig.plug('encrypted-stick');
      const plain = await arrived('0781', '5567');
      const encrypted = (await nextChange(changes, (c) => c.kind === 'arrived' && c.device.key !== plain.key && c.device.interfaceClasses.includes(8))).device;
      const plainVerdict = await assessStorage(await rig.platform.storage(plain));
      const encryptedVerdict = await assessStorage(await rig.platform.storage(encrypted));
      expect(plainVerdict).toMatchObject({ encrypted: false, unreadable: false });
      expect(plainVerdict.volumes.length).toBeGreaterThan(0);
      expect(encryptedVerdict).toMatchObject({ encrypted: true, unreadable: false });
      expect(encryptedVerdict.scheme).not.toBe('none');
    });

    it('blocks a stick and allows a keyboard, each with exactly its own effect', async () => {
      await rig.plug('plain-stick');
      await rig.plug('keyboard');
      const stick = await arrived('0781', '5567');
      const keyboard = (await nextChange(changes, (c) => c.kind === 'arrived' && c.device.interfaceClasses.includes(3))).device;
      await rig.platform.block(stick);
      await rig.platform.allow(keyboard);
      expect(rig.effect('plain-stick')).toBe('blocked');
      expect(rig.effect('keyboard')).toBe('allowed');
      expect(rig.effect('encrypted-stick')).toBe('none');
    });

    it('makes a stick read-only where the OS can, and says so with a code where it cannot', async () => {
      await rig.plug('plain-stick');
      const stick = await arrived('0781', '5567');
      if (rig.platform.canReadOnly) {
        await rig.platform.readOnly(stick);
        expect(rig.effect('plain-stick')).toBe('readonly');
      } else {
        await expect(rig.platform.readOnly(stick)).rejects.toMatchObject({ code: 'INV_ERR_USB_READONLY_UNSUPPORTED' });
      }
    });

    it('answers an action on a device that has gone with a coded error', async () => {
      await rig.plug('plain-stick');
      const stick = await arrived('0781', '5567');
      await rig.unplug('plain-stick');
      const error = await rig.platform.block(stick).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InvigilatorError);
      expect((error as InvigilatorError).code).toBe('INV_ERR_USB_DEVICE_GONE');
    });

    it('passes on hostile descriptor strings only as short, printable text', async () => {
      await rig.plug('hostile-strings');
      const device = (await nextChange(changes, (c) => c.kind === 'arrived' && c.device.product !== undefined && c.device.product.includes('script'))).device;
      for (const s of [device.manufacturer, device.product, device.serial]) {
        if (s === undefined) continue;
        expect(s.length).toBeLessThanOrEqual(126);
        // eslint-disable-next-line no-control-regex
        expect(s).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e]/);
        expect(s).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
      }
    });
  });
}
