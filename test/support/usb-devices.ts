import { LinuxUsbPlatform, type RunProgram } from '../../agent/usb/linux/linux-usb-platform';
import type { RigDevice } from '../agent/usb/platform-contract';
import { type ImageMaker, missingImageTools } from './disk-images';
import type { FixtureDevice, SysfsFixture } from './sysfs-fixture';

/** The devices every USB test plugs, backed by real disk images made now. */
export function fixtureDevices(images: ImageMaker): Record<RigDevice, { port: string; device: FixtureDevice }> {
  if (missingImageTools.length > 0 && process.env.CI !== 'true')
    process.stdout.write(`linux-usb-platform: the disk image tools are missing (${missingImageTools.join(', ')}); image-backed tests will fail\n`);
  const PLAIN = images.fat('plain.img', 40, 32);
  const LUKS2 = images.luks('luks2.img', 'luks2');

  return {
    'present-at-start': {
      port: '1-4',
      device: { vendorId: 0x090c, productId: 0x1000, interfaceClasses: [8], serial: 'AA00000000011234', product: 'Flash Disk', disk: { image: PLAIN } },
    },
    'plain-stick': {
      port: '1-1',
      device: {
        vendorId: 0x0781,
        productId: 0x5567,
        interfaceClasses: [8],
        serial: '4C530001230101110453',
        manufacturer: 'SanDisk',
        product: 'Cruzer Blade',
        disk: { image: PLAIN },
      },
    },
    'encrypted-stick': {
      port: '1-2',
      device: { vendorId: 0x0951, productId: 0x1666, interfaceClasses: [8], serial: 'E0D55EA5', product: 'DataTraveler 3.0', disk: { image: LUKS2 } },
    },
    keyboard: { port: '1-3', device: { vendorId: 0x046d, productId: 0xc31c, interfaceClasses: [3, 3], manufacturer: 'Logitech', product: 'USB Keyboard' } },
    'hostile-strings': {
      port: '1-5',
      device: {
        vendorId: 0x1234,
        productId: 0xabcd,
        interfaceClasses: [3],
        manufacturer: Buffer.concat([Buffer.from('Evil\x1b[31m\u202eCorp\x00'), Buffer.from([0xff, 0xfe, 0xc3])]),
        product: `<script>alert(1)</script>${'A'.repeat(4096)}`,
        serial: Buffer.from([0xed, 0xa0, 0x80, 0x41]),
      },
    },
  };
}

/** Records the programs the adapter runs (umount, udevadm, blockdev), which cannot act on fixture files. */
export function recordingRunner(log: string[]): RunProgram {
  return async (file, args) => {
    log.push([file, ...args].join(' '));
  };
}

export function linuxPlatformOn(fixture: SysfsFixture, commands: string[]): LinuxUsbPlatform {
  return new LinuxUsbPlatform({
    roots: { sys: fixture.sys, dev: fixture.dev },
    mountInfo: fixture.mountInfo,
    allowedDir: fixture.allowedDir,
    holdNewDevices: true,
    events: fixture,
    run: recordingRunner(commands),
    writeAttribute: fixture.writeAttribute,
    diskWaitMs: 2000,
  });
}
