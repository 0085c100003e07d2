import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROTOCOL_LIMITS } from '../../shared/protocol/primitives';
import type { EventEnvelope } from '../../shared/protocol';
import { eventually, startCli, tempDir } from '../support/cli';
import { RawClient, freePort } from '../support/harness';
import { sampleEvent } from '../support/samples';

const FAKE_PROGRAMS = 100_000;
const PER_BATCH = 500;
const CAP = PROTOCOL_LIMITS.maxInstalledPrograms;

/** Resident memory of a process, from /proc: now, and the most it has held (VmHWM). */
function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
  return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
}

/**
 * Issue 13, item 9, as the review did it: an enrolled device reports 100,000
 * fake installed programs (they went in within 11 s; the device's software
 * list then answered 51 MB at once and the collector grew from 118 MB to
 * 352 MB). Against the built collector, a real process on SQLite.
 */
(process.platform === 'linux' ? describe : describe.skip)('a device that reports 100,000 installed programs', () => {
  it('gets every event stored and acknowledged, a list cut at the cap, a coded error and one event; the API answers in pages of bounded size', async () => {
    const dataDir = tempDir('flood');
    const port = await freePort();
    // The token the collector keeps in its data dir approves at once: this test is about the inventory, not approval.
    const run = startCli(
      ['collector', '--db', `sqlite:${join(dataDir, 'collector.db')}`, '--port', String(port), '--data-dir', dataDir, '--log-level', 'error'],
      { INVIGILATOR_ENROLLMENT_APPROVAL: 'automatic' },
    );
    try {
      await eventually(() => (/listening on/.test(run.output()) ? true : undefined), 400);
      const pid = run.child.pid!;
      const admin = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
      const api = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${admin}` } });
        const text = await res.text();
        return { status: res.status, bytes: Buffer.byteLength(text), body: JSON.parse(text) as Record<string, unknown> };
      };

      const client = new RawClient(`ws://127.0.0.1:${port}/agent`);
      await client.opened;
      client.send({
        v: 1,
        type: 'hello',
        agentVersion: '0.1.0',
        hostname: 'LAPTOP-13',
        platform: 'linux',
        auth: { kind: 'enroll', token: readFileSync(join(dataDir, 'enrollment-token'), 'utf8').trim(), installationId: `inst-${randomUUID()}` },
      });
      const { deviceId } = await client.next('enrolled');
      await client.next('welcome');
      const before = memoryOf(pid);

      // Each batch also carries one ordinary event: nothing else in a batch may be lost to the cap.
      let seq = 0;
      const started = Date.now();
      for (let n = 0; n < FAKE_PROGRAMS; n += PER_BATCH) {
        const events: EventEnvelope[] = Array.from({ length: PER_BATCH - 1 }, (_, i) => ({
          id: randomUUID(),
          deviceId,
          seq: ++seq,
          time: new Date().toISOString(),
          type: 'software.installed',
          severity: 'info',
          data: { name: `Totally Real Program ${n + i}`, version: '1.0', publisher: 'Nobody', source: 'registry:hku:S-1-5-21-1-2-3-1001' },
        })) as EventEnvelope[];
        events.push({ ...sampleEvent('usb.connected'), id: randomUUID(), deviceId, seq: ++seq } as EventEnvelope);
        client.send({ v: 1, type: 'event.batch', events });
        expect((await client.next('ack')).upToSeq).toBe(seq);
      }
      const floodSeconds = (Date.now() - started) / 1000;

      // Told, with the code, on a connection that stays open.
      const errors = client.messages().filter((m) => m.type === 'error');
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.every((m) => m.type === 'error' && m.error.code === 'INV_ERR_INVENTORY_TOO_LARGE')).toBe(true);
      expect(client.ws.readyState).toBe(client.ws.OPEN);

      // Every event is kept; the network manager hears once that the list is full.
      const usb = await api(`/api/events?device=${deviceId}&type=usb.connected&limit=1000`);
      expect((usb.body.events as unknown[]).length).toBe(FAKE_PROGRAMS / PER_BATCH);
      const full = await api('/api/events?type=software.inventory.full');
      expect((full.body.events as Array<{ data: unknown }>).map((e) => e.data)).toEqual([{ deviceId, hostname: 'LAPTOP-13', cap: CAP }]);

      // The list: the cap's worth, in pages of at most 1000, each response bounded.
      const first = await api(`/api/devices/${deviceId}/software`);
      expect((first.body.software as unknown[]).length).toBe(100);
      let listed = 0;
      let biggest = 0;
      let cursor: string | null = null;
      for (let page = 0; page < 100; page++) {
        const res = await api(`/api/devices/${deviceId}/software?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
        expect(res.status).toBe(200);
        listed += (res.body.software as unknown[]).length;
        biggest = Math.max(biggest, res.bytes);
        cursor = res.body.next as string | null;
        if (!cursor) break;
      }
      expect(listed).toBe(CAP);
      expect(biggest).toBeLessThan(512 * 1024);

      const after = memoryOf(pid);
      process.stdout.write(
        `inventory flood: ${FAKE_PROGRAMS} programs in ${floodSeconds.toFixed(1)} s; collector RSS ${before.rssMiB.toFixed(0)} MiB before, ` +
          `${after.rssMiB.toFixed(0)} MiB after, peak ${after.peakMiB.toFixed(0)} MiB; largest list page ${(biggest / 1024).toFixed(0)} KiB\n`,
      );
      // The review saw 118 MB become 352 MB. The bound is loose on purpose (a shared machine, V8's heap
      // grows as it likes) but far under what listing 100,000 programs at once took.
      expect(after.peakMiB - before.rssMiB).toBeLessThan(120);
      client.ws.close();
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  }, 180_000);
});
