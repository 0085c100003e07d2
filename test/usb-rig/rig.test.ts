import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageMaker, missingImageTools } from '../support/disk-images';
import { rigUnavailable, startGuest, waitFor } from './rig';
import type { Guest } from './rig';

/**
 * Smoke test of the rig itself: the guest boots, a QEMU stick and a configfs
 * gadget enumerate on its USB bus, and the project's code runs in it. The
 * scenario tests build on exactly these steps.
 */

const unavailable = rigUnavailable() ?? (missingImageTools.includes('mkfs.vfat') ? 'mkfs.vfat is missing (apt-get install dosfstools)' : undefined);

if (unavailable && process.env.CI === 'true') {
  // Under CI the rig must run: a missing QEMU is a broken CI machine, not a reason to skip.
  describe('USB rig', () => {
    it('can run under CI', () => {
      throw new Error(`the USB rig cannot run: ${unavailable}`);
    });
  });
} else if (unavailable) {
  process.stdout.write(`\nSkipping the USB rig tests: ${unavailable}\n`);
  describe.skip('USB rig', () => {
    it('needs QEMU', () => undefined);
  });
} else {
  describe('USB rig (Debian kernel under QEMU)', () => {
    let dir: string;
    let guest: Guest | undefined;

    const g = (): Guest => {
      if (!guest) throw new Error('the guest did not start');
      return guest;
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'usb-rig-test-'));
      const images = new ImageMaker(dir);
      // Two virtio disks, /dev/vda and /dev/vdb, to back gadgets.
      const disks = [images.fat('vda.img', 40), images.fat('vdb.img', 40)];
      guest = await startGuest({ disks });
    }, 300_000);

    afterAll(async () => {
      await guest?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    it('boots a Debian kernel', async () => {
      const { code, output } = await g().run('uname -r');
      expect(code).toBe(0);
      expect(output.trim()).toMatch(/^\d+\.\d+\.\d+-\d+-amd64$/);
    });

    it('reports exit codes and bounds a hanging command', async () => {
      expect(await g().run('echo out; echo err >&2; exit 7')).toEqual({ code: 7, output: 'out\nerr\n' });
      await expect(g().run('sleep 30', 1_000)).rejects.toThrow(/timed out/);
      expect((await g().run('echo still here')).output).toBe('still here\n');
    });

    it('plugs and unplugs a usb-storage stick that udev and lsblk see', async () => {
      const stick = new ImageMaker(dir).fat('stick.img', 40);
      await g().plug('stick1', stick, { serial: 'RIG0001' });
      const listing = await waitFor(g(), 'lsblk -J -o NAME,SERIAL,TRAN,FSTYPE', (r) => diskWithSerial(r.output, 'RIG0001') !== undefined, 20_000, 100);
      const disk = diskWithSerial(listing.output, 'RIG0001');
      expect(disk).toMatchObject({ tran: 'usb', fstype: 'vfat' });
      const udev = await g().run(`udevadm info --query=property --name=/dev/${disk?.name}`);
      expect(udev.output).toMatch(/^ID_BUS=usb$/m);
      expect((await g().run('cat /sys/bus/usb/devices/*/serial')).output).toContain('RIG0001');

      await g().unplug('stick1');
      await waitFor(g(), 'lsblk -J -o NAME,SERIAL', (r) => diskWithSerial(r.output, 'RIG0001') === undefined, 10_000, 100);
    }, 60_000);

    it('enumerates a configfs gadget with a chosen VID:PID', async () => {
      const ids = 'for d in /sys/bus/usb/devices/*; do [ -r $d/idVendor ] && echo "$(cat $d/idVendor):$(cat $d/idProduct)"; done; true';
      await g().gadget('g1', { vendorId: '1234', productId: '5678', serial: 'GADGET01', disk: '/dev/vdb' });
      await waitFor(g(), ids, (r) => r.output.includes('1234:5678'), 20_000, 100);
      expect((await g().run('cat /sys/bus/usb/devices/*/idVendor')).output).toContain('1234');
      await waitFor(g(), 'lsblk -J -o NAME,SERIAL,TRAN,FSTYPE', (r) => diskWithSerial(r.output, 'GADGET01')?.tran === 'usb', 20_000, 100);

      await g().removeGadget('g1');
      await waitFor(g(), ids, (r) => !r.output.includes('1234:5678'), 20_000, 100);
    }, 60_000);

    it('runs the built agent code and better-sqlite3 on the guest Node', async () => {
      const script = [
        "require('/invigilator/dist/agent/usb/linux/sysfs-tree.js');",
        "const Database = require('/invigilator/node_modules/better-sqlite3');",
        "const db = new Database(':memory:');",
        "console.log('answer', db.prepare('select 6 * 7 as x').get().x);",
      ].join(' ');
      const { code, output } = await g().run(`node -e "${script}"`, 60_000);
      expect({ code, output }).toEqual({ code: 0, output: 'answer 42\n' });
    }, 90_000);
  });
}

interface LsblkDevice {
  name: string;
  serial?: string | null;
  tran?: string | null;
  fstype?: string | null;
}

function diskWithSerial(lsblkJson: string, serial: string): LsblkDevice | undefined {
  try {
    const parsed = JSON.parse(lsblkJson) as { blockdevices?: LsblkDevice[] };
    return parsed.blockdevices?.find((d) => d.serial === serial);
  } catch {
    return undefined;
  }
}
