import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type LinuxUsbPlatform, runProgram } from '../../../agent/usb/linux/linux-usb-platform';
import { type Uevent, UdevadmMonitor } from '../../../agent/usb/linux/uevent-source';
import { parseUsbDescriptors } from '../../../agent/usb/linux/usb-descriptors';
import type { UsbChange } from '../../../agent/usb/usb-platform';
import { tempDir } from '../../support/cli';
import { ImageMaker } from '../../support/disk-images';
import { SysfsFixture, rawDescriptors } from '../../support/sysfs-fixture';
import { fixtureDevices, linuxPlatformOn } from '../../support/usb-devices';
import { usbPlatformContract } from './platform-contract';

const FIXTURE_DEVICES = fixtureDevices(new ImageMaker(tempDir('linux-usb-images')));

usbPlatformContract('linux', async () => {
  const fixture = new SysfsFixture();
  const commands: string[] = [];
  fixture.plug(FIXTURE_DEVICES['present-at-start'].port, FIXTURE_DEVICES['present-at-start'].device, false);
  const platform = linuxPlatformOn(fixture, commands);
  return {
    platform,
    plug: async (name) => fixture.plug(FIXTURE_DEVICES[name].port, FIXTURE_DEVICES[name].device),
    unplug: async (name) => fixture.unplug(FIXTURE_DEVICES[name].port),
    effect: (name) => {
      const port = FIXTURE_DEVICES[name].port;
      const written = fixture.writes.filter((w) => w.startsWith(`${port}/authorized=`));
      const last = written[written.length - 1];
      if (last === undefined) return 'none';
      if (last.endsWith('=0')) return 'blocked';
      const disks = fixture.blockNames(port);
      if (disks.some((d) => commands.includes(`blockdev --setro ${join(fixture.dev, d)}`))) return 'readonly';
      return 'allowed';
    },
    close: async () => fixture.close(),
  };
});

describe('the linux USB adapter', () => {
  let fixture: SysfsFixture;
  let commands: string[];
  let platform: LinuxUsbPlatform;
  let changes: UsbChange[];

  beforeEach(async () => {
    fixture = new SysfsFixture();
    commands = [];
    platform = linuxPlatformOn(fixture, commands);
    changes = [];
    await platform.start((c) => changes.push(c));
  });
  afterEach(async () => {
    await platform.stop();
    fixture.close();
  });

  it('holds new devices from the start, and gives the machine its old default back on a clean stop', async () => {
    expect(fixture.authorizedDefault()).toBe('0');
    fixture.plug('1-1', FIXTURE_DEVICES['plain-stick'].device);
    expect(fixture.authorized('1-1')).toBe('0');
    expect(fixture.blockNames('1-1')).toEqual([]);
    await platform.stop();
    expect(fixture.authorizedDefault()).toBe('1');
    expect(fixture.writes).toEqual(['authorized_default=0', 'authorized_default=1']);
  });

  it('reads a held device from its raw descriptors, before any interface exists', async () => {
    fixture.plug('1-1', FIXTURE_DEVICES['plain-stick'].device);
    await new Promise((r) => setImmediate(r));
    await waitFor(() => changes.length > 0);
    expect(changes[0]).toMatchObject({
      kind: 'arrived',
      device: { key: '1-1', vendorId: '0781', productId: '5567', interfaceClasses: [8], product: 'Cruzer Blade', bus: '1' },
    });
    expect(existsSync(join(fixture.deviceDir('1-1'), '1-1:1.0'))).toBe(false);
  });

  it('authorises a stick to read it, then blocks it with exactly one de-authorising write after unmounting', async () => {
    fixture.plug('1-1', FIXTURE_DEVICES['plain-stick'].device);
    await waitFor(() => changes.length > 0);
    const stick = changes[0]!.device;
    const disks = await platform.storage(stick);
    expect(disks.map((d) => d.device)).toEqual(['/dev/sdb']);
    fixture.mount('sdb', '/media/pupil/MY STICK');
    await platform.block(stick);
    expect(fixture.writes).toEqual(['authorized_default=0', '1-1/authorized=1', '1-1/authorized=0']);
    expect(commands).toEqual(['umount /media/pupil/MY STICK']);
    expect(fixture.blockNames('1-1')).toEqual([]);
  });

  it('allows a stick by marking its disks for the udev rule and re-triggering udev, with no other write', async () => {
    fixture.plug('1-2', FIXTURE_DEVICES['encrypted-stick'].device);
    await waitFor(() => changes.length > 0);
    const stick = changes[0]!.device;
    await platform.storage(stick);
    await platform.allow(stick);
    expect(fixture.writes).toEqual(['authorized_default=0', '1-2/authorized=1']);
    expect(readFileSync(join(fixture.allowedDir, 'sdb'), 'utf8')).toBe('0951:1666\n');
    expect(commands).toEqual(['udevadm trigger --action=change --subsystem-match=block --sysname-match=sdb']);
  });

  it('forgets the allow marker when the disk goes, so the next stick to get that name is held again', async () => {
    fixture.plug('1-2', FIXTURE_DEVICES['encrypted-stick'].device);
    await waitFor(() => changes.length > 0);
    await platform.storage(changes[0]!.device);
    await platform.allow(changes[0]!.device);
    fixture.unplug('1-2');
    await waitFor(() => !existsSync(join(fixture.allowedDir, 'sdb')));
    await waitFor(() => changes.some((c) => c.kind === 'removed'));
  });

  it('finds arrivals and removals udev did not report when asked to look again', async () => {
    // The monitor has died: the fixture delivers no more udev events.
    fixture.stop();
    fixture.plug('1-1', FIXTURE_DEVICES['plain-stick'].device);
    expect(changes).toEqual([]);
    await platform.pollNow();
    expect(changes.map((c) => [c.kind, c.device.key])).toEqual([['arrived', '1-1']]);
    fixture.unplug('1-1');
    await platform.pollNow();
    await platform.pollNow();
    expect(changes.map((c) => [c.kind, c.device.key])).toEqual([
      ['arrived', '1-1'],
      ['removed', '1-1'],
    ]);
  });

  it('marks a descriptor set it cannot walk to the end as incomplete, and finds classes behind 64 alternate settings', () => {
    const good = rawDescriptors(FIXTURE_DEVICES.keyboard.device);
    expect(parseUsbDescriptors(good)).toEqual({ vendorId: 0x046d, productId: 0xc31c, deviceClass: 0, interfaceClasses: [3], complete: true });
    expect(parseUsbDescriptors(good.subarray(0, 10))).toBeUndefined();
    // A device descriptor that claims another length is not a device descriptor.
    expect(parseUsbDescriptors(Buffer.concat([Buffer.from([17]), good.subarray(1)]))).toBeUndefined();
    const looping = Buffer.concat([good.subarray(0, 18), Buffer.from([0, 4, 0, 0, 0, 8])]);
    expect(parseUsbDescriptors(looping)).toMatchObject({ interfaceClasses: [], complete: false });
    const overrun = Buffer.concat([good.subarray(0, 18), Buffer.from([200, 4, 0, 0, 0, 8])]);
    expect(parseUsbDescriptors(overrun)).toMatchObject({ interfaceClasses: [], complete: false });
    // 64 vendor-specific alternate settings first, then storage and a keyboard: all three classes are found.
    const alternates = Array.from({ length: 64 }, (_, i) => Buffer.from([9, 4, 0, i, 0, 0xff, 0, 0, 0]));
    const hidden = Buffer.concat([good.subarray(0, 27), ...alternates, Buffer.from([9, 4, 1, 0, 0, 8, 6, 0x50, 0]), Buffer.from([9, 4, 2, 0, 0, 3, 1, 1, 0])]);
    expect(parseUsbDescriptors(hidden)).toMatchObject({ interfaceClasses: [0xff, 8, 3], complete: true });
  });

  it('does not trust a held device whose descriptors are broken: its classes are unknown', async () => {
    fixture.plug('1-1', FIXTURE_DEVICES['plain-stick'].device, false);
    fixture.plug('1-3', FIXTURE_DEVICES.keyboard.device, false);
    writeFileSync(join(fixture.deviceDir('1-1'), 'descriptors'), Buffer.from([9, 1, 0, 2]));
    await platform.pollNow();
    expect(changes.find((c) => c.device.key === '1-1')!.device).toMatchObject({ descriptorsIncomplete: true, interfaceClasses: [] });
    expect(changes.find((c) => c.device.key === '1-3')!.device.descriptorsIncomplete).toBeUndefined();
  });

  it('refuses to act on a different stick that took the same port', async () => {
    fixture.plug('1-1', FIXTURE_DEVICES['plain-stick'].device);
    await waitFor(() => changes.length > 0);
    const first = changes[0]!.device;
    fixture.unplug('1-1');
    fixture.plug('1-1', FIXTURE_DEVICES['encrypted-stick'].device);
    await expect(platform.allow(first)).rejects.toMatchObject({ code: 'INV_ERR_USB_DEVICE_GONE' });
  });
});

describe('udev events through a real `udevadm monitor` process', () => {
  it('parses what the monitor prints, across chunk boundaries, into arrivals and removals', async () => {
    // A stand-in for udevadm that prints the recorded monitor output of a stick being plugged and pulled.
    const recorded = readFileSync(join(__dirname, '../../fixtures/usb/linux/udevadm-monitor-stick.txt'), 'utf8');
    const dir = tempDir('udevadm');
    const script = join(dir, 'udevadm');
    writeFileSync(
      script,
      `#!${process.execPath}\nconst text = ${JSON.stringify(recorded)};\nlet i = 0;\nconst step = () => { if (i >= text.length) return; process.stdout.write(text.slice(i, i + 37)); i += 37; setTimeout(step, 1); };\nstep();\n`,
    );
    chmodSync(script, 0o755);
    const events: Uevent[] = [];
    const monitor = new UdevadmMonitor(script);
    const exited = new Promise<string>((resolve) => monitor.start((e) => events.push(e), resolve));
    expect(await exited).toMatch(/exited \(0\)/);
    expect(events.map((e) => `${e.action} ${e.subsystem} ${e.devtype ?? ''} ${e.devname ?? ''}`.trim())).toEqual([
      'add usb usb_device /dev/bus/usb/001/005',
      'add usb usb_interface',
      'add block disk /dev/sdb',
      'add block partition /dev/sdb1',
      'remove block partition /dev/sdb1',
      'remove block disk /dev/sdb',
      'remove usb usb_interface',
      'remove usb usb_device /dev/bus/usb/001/005',
    ]);
    expect(events[0]!.properties.get('PRODUCT')).toBe('781/5567/100');
  });

  it('runs programs without a shell and turns a failure into a coded error', async () => {
    await expect(runProgram('true', [])).resolves.toBeUndefined();
    await expect(runProgram('sh', ['-c', 'echo nope >&2; exit 3'])).rejects.toMatchObject({ code: 'INV_ERR_USB_OS_COMMAND_FAILED' });
    const marker = join(tempDir('no-shell'), 'x');
    await runProgram('echo', [`; touch ${marker}`]);
    expect(existsSync(marker)).toBe(false);
  });
});

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!check()) throw new Error('condition not reached within 5 s');
}
