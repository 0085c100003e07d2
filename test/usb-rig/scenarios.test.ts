import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preset } from '../../shared/policy/presets';
import { ImageMaker } from '../support/disk-images';
import {
  type Agent,
  type Collector,
  type MonitoredEvent,
  agentDiagnostics,
  apiGet,
  apiPost,
  authorizedDefaults,
  events,
  installGuestTools,
  parseMonitor,
  startAgent,
  startCollector,
  startMountWatch,
  startTrayClient,
  startUdevMonitor,
  stopAgent,
  stopMountWatch,
  stopTrayClient,
  stopUdevMonitor,
  trayLines,
  usbState,
  waitForEvent,
  waitForUsb,
  writePolicy,
} from './guest-services';
import { rigUnavailable, startGuest, waitFor } from './rig';
import type { Guest } from './rig';

/**
 * Issue 5: USB control on a real Linux USB bus. The built collector and agent
 * run inside the rig guest (a Debian kernel under QEMU, see README.md); sticks
 * backed by images made here are hot-plugged into it, and what the kernel,
 * udev and the collector say is checked from inside the guest. One boot for
 * the whole file; each policy gets its own collector and agent.
 */

const IMAGE_TOOLS = ['mkfs.vfat', 'mkfs.exfat', 'cryptsetup', 'sfdisk'];
const missingTools = IMAGE_TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
const unavailable =
  rigUnavailable() ??
  (missingTools.length ? `missing image tools: ${missingTools.join(', ')} (apt-get install dosfstools exfatprogs cryptsetup-bin fdisk)` : undefined);

interface Images {
  plainFat: string;
  fatMbr: string;
  exfat: string;
  luks2: string;
  luks2Partitioned: string;
  bitlocker: string;
  mixed: string;
  gadgetDisk: string;
}

function makeImages(dir: string): Images {
  const m = new ImageMaker(dir);
  return {
    plainFat: m.fat('plain-fat.img', 40),
    fatMbr: m.partitioned('fat-mbr.img', 'dos', [{ image: m.fat('fat-mbr-part.img', 40), type: 'c' }]),
    exfat: m.exfat('exfat.img'),
    luks2: m.luks('luks2.img', 'luks2'),
    luks2Partitioned: m.partitioned('luks2-mbr.img', 'dos', [{ image: m.luks('luks2-mbr-part.img', 'luks2'), type: '83' }]),
    bitlocker: m.bitlocker('bitlocker.img', 'win7'),
    mixed: m.partitioned('mixed.img', 'dos', [
      { image: m.luks('mixed-luks.img', 'luks2'), type: '83' },
      { image: m.fat('mixed-fat.img', 40), type: 'c' },
    ]),
    // Backs the configfs gadgets (/dev/vda in the guest): a plain FAT stick whatever VID:PID it wears.
    gadgetDisk: m.fat('gadget-fat.img', 40),
  };
}

function need<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('the collectors did not start');
  return value;
}

/** udev's block events for the disks and partitions under one USB device (its kernel name, e.g. 2-1). */
function blockEventsOf(monitorText: string, usbName: string): MonitoredEvent[] {
  return parseMonitor(monitorText).filter((e) => e.subsystem === 'block' && e.devpath.includes(`/${usbName}/${usbName}:`));
}

if (unavailable && process.env.CI === 'true') {
  describe('USB control on the rig', () => {
    it('can run under CI', () => {
      throw new Error(`the USB rig cannot run: ${unavailable}`);
    });
  });
} else if (unavailable) {
  process.stdout.write(`\nSkipping the USB rig scenarios: ${unavailable}\n`);
  describe.skip('USB control on the rig', () => {
    it('needs QEMU', () => undefined);
  });
} else {
  describe('USB control on the rig (collector and agent in the guest)', () => {
    let dir: string;
    let images: Images;
    let guest: Guest | undefined;
    let plugs = 0;
    const plugged = new Set<string>();
    /** One collector per policy, all started at once: a Node start costs seconds under emulation, and they overlap. */
    const collectors: { bps?: Collector; cis?: Collector; allow?: Collector } = {};
    const ALLOWLIST_POLICY = '/var/inv/bps-allowlist-policy.json';

    const g = (): Guest => {
      if (!guest) throw new Error('the guest did not start');
      return guest;
    };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'usb-rig-scenarios-'));
      images = makeImages(dir);
      guest = await startGuest({ disks: [images.gadgetDisk] });
      await installGuestTools(guest);
      const base = preset('basildon-primary');
      if (!base) throw new Error('no basildon-primary preset');
      await writePolicy(guest, ALLOWLIST_POLICY, {
        ...base,
        id: 'basildon-primary-rig-allowlist',
        revision: base.revision + 1,
        usbAllowlist: [{ id: 'allow-rig-1234-5678', vendorId: '1234', productId: '5678', note: 'the rig: an allowlisted stick' }],
      });
      [collectors.bps, collectors.cis, collectors.allow] = await Promise.all([
        startCollector(guest, { dir: '/var/inv/bps-collector', port: 18470, policy: 'basildon-primary' }),
        startCollector(guest, { dir: '/var/inv/cis-collector', port: 18471, policy: 'carrington-infant' }),
        startCollector(guest, { dir: '/var/inv/allow-collector', port: 18472, policy: ALLOWLIST_POLICY }),
      ]);
    }, 300_000);

    afterAll(async () => {
      await guest?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    /** Plugs a QEMU stick; returns its QEMU id for unplug. */
    async function plug(image: string, serial: string): Promise<string> {
      const id = `s${++plugs}`;
      await g().plug(id, image, { serial });
      plugged.add(id);
      return id;
    }

    async function unplug(id: string, serial: string): Promise<void> {
      plugged.delete(id);
      await g().unplug(id);
      await waitFor(g(), `grep -lx ${serial} /sys/bus/usb/devices/*/serial 2>/dev/null; true`, (r) => r.output.trim() === '', 15_000, 100);
    }

    /** Whatever a failed test left plugged goes, so the next test starts from an empty bus. */
    afterEach(async () => {
      for (const id of [...plugged]) {
        plugged.delete(id);
        await g()
          .unplug(id)
          .catch(() => undefined);
      }
    }, 60_000);

    /** Runs a check; on failure the error carries what the guest showed. */
    async function withDiagnostics<T>(agent: Agent, serial: string, body: () => Promise<T>): Promise<T> {
      try {
        return await body();
      } catch (e) {
        const err = e as Error;
        err.message = `${err.message}\n${await agentDiagnostics(g(), agent, serial)}`;
        throw err;
      }
    }

    /** The decision reached the collector, then sysfs agrees: de-authorised, no disk left. */
    async function expectBlocked(collector: Collector, serial: string, reason: string) {
      const event = await waitForEvent(g(), collector, 'usb.storage.blocked', serial);
      expect(event.data.reason).toBe(reason);
      expect(event.severity).toBe('alert');
      const state = await waitForUsb(g(), serial, (s) => s.authorized === '0' && s.blocks.length === 0, 5_000);
      expect(state).toMatchObject({ authorized: '0', blocks: [] });
      return { event, state };
    }

    /** Allowed: authorised, its disk present, and udev no longer hides it from the desktop (the agent's allow marker). */
    async function expectAllowed(collector: Collector, serial: string, after = 0) {
      const deadline = Date.now() + 20_000;
      let allowed = await events(g(), collector, 'usb.storage.allowed');
      while (allowed.filter((e) => e.data.device?.serial === serial).length <= after && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 300));
        allowed = await events(g(), collector, 'usb.storage.allowed');
      }
      const mine = allowed.filter((e) => e.data.device?.serial === serial);
      if (mine.length <= after) throw new Error(`no new usb.storage.allowed event for ${serial} (had ${after})`);
      const event = mine[mine.length - 1]!;
      const state = await waitForUsb(g(), serial, (s) => s.authorized === '1' && s.blocks.length > 0, 10_000);
      const disk = state.blocks[0]!;
      // The agent writes /run/invigilator/usb-allowed/NAME and re-triggers udev, so the rule stops setting UDISKS_IGNORE.
      const props = await waitFor(
        g(),
        `udevadm info --query=property --name=/dev/${disk}`,
        (r) => r.code === 0 && !/^UDISKS_IGNORE=1$/m.test(r.output),
        5_000,
        150,
      );
      expect(props.output).not.toMatch(/^UDISKS_IGNORE=1$/m);
      for (const b of state.blocks) expect((await g().run(`test -e /run/invigilator/usb-allowed/${b} && echo marker`)).output.trim()).toBe('marker');
      return { event, state };
    }

    // ---------------------------------------------------------------------------------------------
    describe('under basildon-primary', () => {
      let collector: Collector;
      let agent: Agent;

      beforeAll(async () => {
        collector = need(collectors.bps);
        agent = { dir: '/var/inv/bps-agent', policy: 'basildon-primary', collector };
        await startAgent(g(), agent);
      }, 120_000);

      afterAll(async () => {
        if (agent) await stopAgent(g(), agent).catch(() => undefined);
      }, 60_000);

      it('de-authorises a plain FAT stick after reading it and reports usb.storage.blocked with its serial', async () => {
        const serial = 'PLAINFAT01';
        await withDiagnostics(agent, serial, async () => {
          expect(Object.values(await authorizedDefaults(g()))).not.toContain('1');
          await startUdevMonitor(g(), 'plain', { subsystems: ['block'] });
          const id = await plug(images.plainFat, serial);
          const { event, state } = await expectBlocked(collector, serial, 'unencrypted');
          expect(event.data.device).toMatchObject({ serial, vendorId: '46f4', productId: '0001' });
          expect(event.clause?.id).toBe('bps-connections-encrypted');
          expect(event.deviceId).toMatch(/\S/);
          // Still on the bus, but de-authorised: the block is the agent's, not an unplug.
          expect((await g().run(`cat /sys/bus/usb/devices/${state.name}/authorized`)).output.trim()).toBe('0');
          await unplug(id, serial);
          // Its disk did appear (the agent authorised it to read it) and went with the de-authorisation, before the unplug.
          const seen = blockEventsOf(await stopUdevMonitor(g(), 'plain'), state.name);
          expect(seen.filter((e) => e.action === 'add' && e.properties.DEVTYPE === 'disk')).toHaveLength(1);
          expect(seen.filter((e) => e.action === 'remove' && e.properties.DEVTYPE === 'disk')).toHaveLength(1);
        });
      }, 90_000);

      it('never mounts a plain stick: nothing mounts it from arrival to removal, and udev marks it UDISKS_IGNORE=1', async () => {
        const serial = 'NOMOUNT01';
        await withDiagnostics(agent, serial, async () => {
          await startMountWatch(g(), 'nomount');
          await startUdevMonitor(g(), 'nomount', { subsystems: ['block'] });
          const id = await plug(images.fatMbr, serial);
          const { state } = await expectBlocked(collector, serial, 'unencrypted');
          await unplug(id, serial);
          const watch = await stopMountWatch(g(), 'nomount');
          const added = blockEventsOf(await stopUdevMonitor(g(), 'nomount'), state.name).filter((e) => e.action === 'add');
          expect(watch.mounts).toEqual([]);
          // The watch really ran through the window (every 50 ms; a round costs more under emulation).
          expect(watch.rounds).toBeGreaterThan(10);
          // The disk and its FAT partition both appeared while the agent read them...
          expect(added.map((e) => e.properties.DEVTYPE).sort()).toEqual(['disk', 'partition']);
          // ...and udev hid them from the desktop. udev may handle an add only after the de-authorisation has
          // removed the device (its USB parents gone, nothing left to mount); every add it handled with the
          // USB ancestry in view (ID_BUS=usb) carries the marks, and at least one did.
          const withAncestry = added.filter((e) => e.properties.ID_BUS === 'usb');
          expect(withAncestry.length).toBeGreaterThan(0);
          for (const e of withAncestry) expect(e.properties).toMatchObject({ UDISKS_IGNORE: '1', UDISKS_AUTO: '0', UDISKS_SYSTEM: '1' });
        });
      }, 90_000);

      it.each([
        ['an exFAT stick', 'exfat' as const, 'EXFAT01'],
        ['a stick with one LUKS2 and one FAT partition', 'mixed' as const, 'MIXED01'],
      ])(
        'blocks %s',
        async (_label, image, serial) => {
          await withDiagnostics(agent, serial, async () => {
            const id = await plug(images[image], serial);
            const { event } = await expectBlocked(collector, serial, 'unencrypted');
            if (image === 'mixed') {
              // Both partitions were read: the encrypted one does not excuse the plain one.
              const volumes = event.data.volumes as Array<{ encrypted: boolean }>;
              expect(volumes.map((v) => v.encrypted).sort()).toEqual([false, true]);
            }
            await unplug(id, serial);
          });
        },
        90_000,
      );

      it.each([
        ['a whole-disk LUKS2 stick', 'luks2' as const, 'LUKS2DISK01', 'luks2'],
        ['a partitioned LUKS2 stick', 'luks2Partitioned' as const, 'LUKS2PART01', 'luks2'],
        ['a BitLocker stick', 'bitlocker' as const, 'BITLOCKER01', 'bitlocker'],
      ])(
        'allows %s',
        async (_label, image, serial, scheme) => {
          await withDiagnostics(agent, serial, async () => {
            const id = await plug(images[image], serial);
            const { event } = await expectAllowed(collector, serial);
            expect(event.data).toMatchObject({ scheme, allowlisted: false });
            expect((await events(g(), collector, 'usb.storage.blocked')).filter((e) => e.data.device?.serial === serial)).toEqual([]);
            await unplug(id, serial);
          });
        },
        90_000,
      );

      it('approval round trip: blocked, asked from the tray, approved at the collector, re-plugged and allowed', async () => {
        const serial = 'APPROVE01';
        const trayLog = '/run/rig/tray-approve.log';
        await withDiagnostics(agent, serial, async () => {
          await startTrayClient(g(), agent, trayLog, { kind: 'usb-blocked', reason: 'My homework is on it' });
          await waitFor(g(), `cat ${trayLog} 2>/dev/null`, (r) => r.output.includes('CONNECTED'), 15_000, 100);
          let id = await plug(images.plainFat, serial);
          await expectBlocked(collector, serial, 'unencrypted');

          // The tray got the notice with "ask" and answered it.
          await waitFor(g(), `cat ${trayLog}`, (r) => r.output.includes('ANSWERED'), 15_000, 200);
          const notice = (await trayLines(g(), trayLog)).find((l) => typeof l === 'object' && l.type === 'tray.notice' && l.kind === 'usb-blocked');
          expect(notice).toMatchObject({ kind: 'usb-blocked', actions: expect.arrayContaining(['dismiss', 'ask-permission', 'enter-code']) });

          // The network manager sees the request and approves it.
          type Request = { deviceId: string; requestId: string; subject: { serial?: string; vendorId: string; productId: string }; reason: string };
          let request: Request | undefined;
          const deadline = Date.now() + 20_000;
          while (!request && Date.now() < deadline) {
            const list = await apiGet<{ requests: Request[] }>(g(), collector, '/api/permission-requests?status=pending');
            request = list.requests.find((r) => r.subject.serial === serial);
            if (!request) await new Promise((r) => setTimeout(r, 300));
          }
          if (!request) throw new Error(`the permission request never reached the collector; the tray saw:\n${(await g().run(`cat ${trayLog}`)).output}`);
          expect(request).toMatchObject({ reason: 'My homework is on it', subject: { vendorId: '46f4', productId: '0001', serial } });
          const decided = await apiPost(g(), collector, `/api/permission-requests/${request.deviceId}/${request.requestId}/decision`, {
            decision: 'approved',
            note: 'ok for today',
          });
          expect(decided.status).toBe(200);
          expect(decided.body).toMatchObject({ entry: { vendorId: '46f4', productId: '0001', serial } });

          // The agent has the entry and has told the tray.
          await waitFor(g(), `cat ${agent.dir}/usb-allowlist.json 2>/dev/null`, (r) => r.output.includes(serial), 20_000, 200);
          await waitFor(g(), `cat ${trayLog}`, (r) => r.output.includes('permission-decision'), 20_000, 200);
          const requestId = request.requestId;
          const reported = async () => (await events(g(), collector, 'permission.decided')).find((e) => e.data.requestId === requestId);
          const until = Date.now() + 20_000;
          while (!(await reported()) && Date.now() < until) await new Promise((r) => setTimeout(r, 300));
          expect((await reported())?.data).toMatchObject({ requestId, decision: 'approved' });
          const allowedBefore = (await events(g(), collector, 'usb.storage.allowed')).filter((e) => e.data.device?.serial === serial).length;

          // Out and back in: allowed by the approval.
          await unplug(id, serial);
          id = await plug(images.plainFat, serial);
          const { event } = await expectAllowed(collector, serial, allowedBefore);
          expect(event.data).toMatchObject({ allowlisted: true, exception: { kind: 'allowlist' } });
          await unplug(id, serial);
          await stopTrayClient(g(), trayLog);
        });
      }, 150_000);

      it('the approval covers that stick only: another plain stick is still blocked', async () => {
        const serial = 'OTHER01';
        await withDiagnostics(agent, serial, async () => {
          const id = await plug(images.plainFat, serial);
          await expectBlocked(collector, serial, 'unencrypted');
          await unplug(id, serial);
        });
      }, 90_000);

      it('decides a stick that was already plugged in when the agent started', async () => {
        const serial = 'PRESENT01';
        await withDiagnostics(agent, serial, async () => {
          // A clean stop gives the machine its usual behaviour back: the stick binds and its disk appears.
          await stopAgent(g(), agent, 'TERM');
          expect(Object.values(await authorizedDefaults(g()))).not.toContain('0');
          const id = await plug(images.plainFat, serial);
          await waitForUsb(g(), serial, (s) => s.authorized === '1' && s.blocks.length > 0, 20_000);
          await startAgent(g(), agent);
          await expectBlocked(collector, serial, 'unencrypted');
          await unplug(id, serial);
        });
      }, 120_000);

      it('keeps enforcing when the agent is killed and restarted', async () => {
        const serial = 'KILLED01';
        await withDiagnostics(agent, serial, async () => {
          await stopAgent(g(), agent, 'KILL');
          // A crash leaves new devices held: the root hubs still authorise nothing by default.
          expect(Object.values(await authorizedDefaults(g()))).not.toContain('1');
          const held = await plug(images.plainFat, serial);
          await waitForUsb(g(), serial, () => true, 20_000);
          await new Promise((r) => setTimeout(r, 2_000));
          expect(await usbState(g(), serial)).toMatchObject({ authorized: '0', blocks: [] });

          await startAgent(g(), agent);
          // The held stick is decided on start, and new arrivals are decided as before.
          await expectBlocked(collector, serial, 'unencrypted');
          const after = await plug(images.plainFat, 'KILLED02');
          await expectBlocked(collector, 'KILLED02', 'unencrypted');
          const luks = await plug(images.luks2, 'KILLED03');
          await expectAllowed(collector, 'KILLED03');
          await unplug(held, serial);
          await unplug(after, 'KILLED02');
          await unplug(luks, 'KILLED03');
        });
      }, 150_000);
    });

    // ---------------------------------------------------------------------------------------------
    describe('under carrington-infant', () => {
      let collector: Collector;
      let agent: Agent;

      beforeAll(async () => {
        collector = need(collectors.cis);
        agent = { dir: '/var/inv/cis-agent', policy: 'carrington-infant', collector };
        await startAgent(g(), agent);
      }, 120_000);

      afterAll(async () => {
        if (agent) await stopAgent(g(), agent).catch(() => undefined);
      }, 60_000);

      it('blocks every stick, encrypted or not', async () => {
        const sticks = [
          [images.plainFat, 'CISPLAIN01'],
          [images.luks2, 'CISLUKS01'],
          [images.luks2Partitioned, 'CISLUKSP01'],
          [images.bitlocker, 'CISBITL01'],
        ] as const;
        await withDiagnostics(agent, sticks.map((s) => s[1]).join(','), async () => {
          // Four at once: the emulated xHCI has four USB 2 ports.
          const ids: string[] = [];
          for (const [image, serial] of sticks) ids.push(await plug(image, serial));
          for (const [, serial] of sticks) {
            const { event } = await expectBlocked(collector, serial, 'block-all');
            expect(event.clause?.id).toBe('cis-usb-mass-storage');
          }
          expect((await events(g(), collector, 'usb.storage.allowed')).length).toBe(0);
          for (const [i, [, serial]] of sticks.entries()) await unplug(ids[i]!, serial);
        });
      }, 120_000);
    });

    // ---------------------------------------------------------------------------------------------
    describe('with an allowlisted VID:PID (configfs gadgets)', () => {
      let collector: Collector;
      let agent: Agent;
      const gadgets = new Set<string>();

      beforeAll(async () => {
        collector = need(collectors.allow);
        agent = { dir: '/var/inv/allow-agent', policy: ALLOWLIST_POLICY, collector };
        await startAgent(g(), agent);
      }, 120_000);

      afterEach(async () => {
        for (const id of [...gadgets]) {
          gadgets.delete(id);
          await g()
            .removeGadget(id)
            .catch(() => undefined);
        }
      }, 60_000);

      afterAll(async () => {
        if (agent) await stopAgent(g(), agent).catch(() => undefined);
      }, 60_000);

      async function gadget(id: string, options: { vendorId: string; productId: string; serial: string; keyboard?: boolean }): Promise<void> {
        gadgets.add(id);
        await g().gadget(id, { ...options, disk: '/dev/vda' });
      }

      async function removeGadget(id: string, serial: string): Promise<void> {
        gadgets.delete(id);
        await g().removeGadget(id);
        await waitFor(g(), `grep -lx ${serial} /sys/bus/usb/devices/*/serial 2>/dev/null; true`, (r) => r.output.trim() === '', 15_000, 100);
      }

      it('allows a plain stick whose VID:PID is allowlisted', async () => {
        const serial = 'GADGETOK01';
        await withDiagnostics(agent, serial, async () => {
          await gadget('gok', { vendorId: '1234', productId: '5678', serial });
          const { event, state } = await expectAllowed(collector, serial);
          expect(state.vidpid).toBe('1234:5678');
          expect(event.data).toMatchObject({ allowlisted: true, exception: { kind: 'allowlist', id: 'allow-rig-1234-5678' } });
          await removeGadget('gok', serial);
        });
      }, 90_000);

      it('blocks the same plain stick under another VID:PID', async () => {
        const serial = 'GADGETNO01';
        await withDiagnostics(agent, serial, async () => {
          await gadget('gno', { vendorId: '1234', productId: '9999', serial });
          const { event } = await expectBlocked(collector, serial, 'unencrypted');
          expect(event.data.device).toMatchObject({ vendorId: '1234', productId: '9999' });
          await removeGadget('gno', serial);
        });
      }, 90_000);

      it('blocks a gadget that is both storage and a keyboard (BadUSB guard)', async () => {
        const serial = 'GADGETKB01';
        await withDiagnostics(agent, serial, async () => {
          await startUdevMonitor(g(), 'badusb', { subsystems: ['block', 'input', 'hidraw'] });
          await gadget('gkb', { vendorId: '1234', productId: '5679', serial, keyboard: true });
          const { event } = await expectBlocked(collector, serial, 'bad-usb');
          expect(event.data.device?.interfaceClasses).toEqual(expect.arrayContaining([3, 8]));
          await removeGadget('gkb', serial);
          // Decided from its descriptors alone: no keyboard and no disk ever appeared on the host side.
          const added = parseMonitor(await stopUdevMonitor(g(), 'badusb')).filter((e) => e.action === 'add');
          expect(added.map((e) => `${e.subsystem} ${e.devpath}`)).toEqual([]);
        });
      }, 90_000);
    });
  });
}
