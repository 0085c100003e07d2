import { readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_OUTBOX_OPTIONS, type EventDraft, Outbox, type OutboxOptions } from '../../agent/outbox/outbox';
import type { Severity } from '../../shared/protocol';
import { tempDir } from '../support/cli';

const draft = (reason: string, severity: Severity = 'info'): EventDraft => ({
  type: 'agent.stopped',
  severity,
  time: '2026-11-23T09:00:00.000Z',
  data: { reason },
});
const reasons = (events: Array<{ data: unknown }>) => events.map((e) => (e.data as { reason: string }).reason);

async function openOutbox(dir: string, options: Partial<OutboxOptions> = {}) {
  return Outbox.open({ ...DEFAULT_OUTBOX_OPTIONS, dir, ...options });
}

async function filled(count: number, options: Partial<OutboxOptions> = {}): Promise<string> {
  const dir = tempDir('outbox');
  const { outbox } = await openOutbox(dir, options);
  for (let i = 1; i <= count; i++) await outbox.append(draft(`e${i}`));
  await outbox.close();
  return dir;
}

const segmentPath = (dir: string, n = 1) => join(dir, `${String(n).padStart(10, '0')}.seg`);

describe('the outbox', () => {
  it('keeps events in order across a restart and numbers on from where it stopped', async () => {
    const dir = await filled(5);
    const { outbox } = await openOutbox(dir);
    const next = await outbox.append(draft('e6'));
    const all = await outbox.read(0, 100);
    expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(reasons(all)).toEqual(['e1', 'e2', 'e3', 'e4', 'e5', 'e6']);
    expect(next.seq).toBe(6);
    await outbox.close();
  });

  it('forgets only what was acknowledged, and remembers that across a restart', async () => {
    const dir = await filled(5);
    const first = await openOutbox(dir);
    await first.outbox.ack(3);
    await first.outbox.close();
    const { outbox } = await openOutbox(dir);
    expect((await outbox.read(0, 100)).map((e) => e.seq)).toEqual([4, 5]);
    expect(outbox.lastAckedSeq).toBe(3);
    expect((await outbox.append(draft('e6'))).seq).toBe(6);
    await outbox.close();
  });

  it('group-commits concurrent appends: every one resolves, each with its own sequence number', async () => {
    const dir = tempDir('outbox');
    const { outbox } = await openOutbox(dir);
    const stored = await Promise.all(Array.from({ length: 1000 }, (_, i) => outbox.append(draft(`p${i}`))));
    expect(new Set(stored.map((e) => e.seq)).size).toBe(1000);
    expect((await outbox.read(0, 2000)).map((e) => e.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    await outbox.close();
  });

  it('reads exactly the events after the given point even when an acknowledgement lands mid-read', async () => {
    // The link reads the next batch while acks for earlier batches arrive; an ack
    // that shifted the read's position once made it skip events (lost on the next ack).
    const dir = await filled(100);
    const { outbox } = await openOutbox(dir);
    const reading = outbox.read(50, 50);
    const acking = outbox.ack(30);
    const [batch] = await Promise.all([reading, acking]);
    expect(batch.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 51 + i));
    await outbox.close();
  });

  it('deletes a segment once everything in it is acknowledged', async () => {
    const dir = await filled(200, { segmentBytes: 4096 });
    const before = readdirSync(dir).filter((f) => f.endsWith('.seg')).length;
    const { outbox } = await openOutbox(dir, { segmentBytes: 4096 });
    await outbox.ack(200);
    const after = readdirSync(dir).filter((f) => f.endsWith('.seg'));
    expect(before).toBeGreaterThan(3);
    expect(after).toHaveLength(1);
    expect(await outbox.read(0, 10)).toEqual([]);
    await outbox.close();
  });

  describe('a fresh outbox on a device the collector already knows', () => {
    it("moves its events, and appends made meanwhile, after the collector's highest sequence number, durably", async () => {
      const dir = tempDir('outbox');
      const first = await openOutbox(dir);
      expect(first.outbox.fresh).toBe(true);
      for (const r of ['a', 'b', 'c']) await first.outbox.append(draft(r));

      const renumbering = first.outbox.renumberAfter(100);
      const during = first.outbox.append(draft('d'));
      await renumbering;
      expect((await during).seq).toBe(104);
      expect((await first.outbox.read(100, 10)).map((e) => [e.seq, (e.data as { reason: string }).reason])).toEqual([
        [101, 'a'],
        [102, 'b'],
        [103, 'c'],
        [104, 'd'],
      ]);
      await first.outbox.close();

      const { outbox } = await openOutbox(dir);
      expect(outbox.fresh).toBe(false);
      expect((await outbox.read(0, 10)).map((e) => e.seq)).toEqual([101, 102, 103, 104]);
      expect((await outbox.append(draft('e'))).seq).toBe(105);
      await outbox.close();
    });

    it('is not fresh once it has a state file or a segment', async () => {
      const dir = await filled(1);
      const { outbox } = await openOutbox(dir);
      expect(outbox.fresh).toBe(false);
      await outbox.close();
    });
  });

  describe('recovery after a crash', () => {
    it('keeps every complete record whatever byte the last write was torn at', async () => {
      const dir = await filled(3);
      const whole = readFileSync(segmentPath(dir));
      const lastRecordStart = whole.length - (whole.length - 8) / 3; // three records of equal size after the 8-byte header
      for (let cut = Math.floor(lastRecordStart); cut < whole.length; cut++) {
        writeFileSync(segmentPath(dir), whole.subarray(0, cut));
        const { outbox, report } = await openOutbox(dir);
        expect({ cut, kept: reasons(await outbox.read(0, 10)) }).toEqual({ cut, kept: ['e1', 'e2'] });
        expect(report.tornBytes).toBe(cut - Math.floor(lastRecordStart));
        expect(report.corrupt).toEqual([]);
        await outbox.close();
      }
    });

    it('truncates the torn tail so that new records follow the last complete one', async () => {
      const dir = await filled(3);
      const size = statSync(segmentPath(dir)).size;
      truncateSync(segmentPath(dir), size - 5);
      const first = await openOutbox(dir);
      await first.outbox.append(draft('after-crash'));
      await first.outbox.close();
      const { outbox, report } = await openOutbox(dir);
      expect(reasons(await outbox.read(0, 10))).toEqual(['e1', 'e2', 'after-crash']);
      expect(report).toEqual({ corrupt: [], tornBytes: 0 });
      await outbox.close();
    });

    it('skips a corrupt record in the middle, reports where, and keeps the rest', async () => {
      const dir = await filled(5);
      const bytes = readFileSync(segmentPath(dir));
      const recordSize = (bytes.length - 8) / 5;
      const third = 8 + 2 * recordSize;
      bytes[third + 20] = bytes[third + 20]! ^ 0xff; // a flipped bit inside the third record's payload
      writeFileSync(segmentPath(dir), bytes);

      const { outbox, report } = await openOutbox(dir);

      expect(reasons(await outbox.read(0, 10))).toEqual(['e1', 'e2', 'e4', 'e5']);
      expect(report.corrupt).toEqual([{ segment: '0000000001.seg', offset: third, bytesSkipped: recordSize }]);
      await outbox.close();
    });

    it('finds the next record when a corrupt length field hides where the next one starts', async () => {
      const dir = await filled(5);
      const bytes = readFileSync(segmentPath(dir));
      const recordSize = (bytes.length - 8) / 5;
      bytes.writeUInt32LE(0x00ffffff, 8 + recordSize); // record 2 claims to be 16 MB long
      writeFileSync(segmentPath(dir), bytes);
      const { outbox, report } = await openOutbox(dir);
      expect(reasons(await outbox.read(0, 10))).toEqual(['e1', 'e3', 'e4', 'e5']);
      expect(report.corrupt).toHaveLength(1);
      await outbox.close();
    });

    it('ignores a damaged state file: the segments still say what is unsent', async () => {
      const dir = await filled(3);
      writeFileSync(join(dir, 'state.json'), '{"ackedSeq": 2');
      const { outbox } = await openOutbox(dir);
      expect((await outbox.read(0, 10)).map((e) => e.seq)).toEqual([1, 2, 3]);
      await outbox.close();
    });
  });

  describe('the byte cap', () => {
    it('drops the least important events first, oldest first, and says how many', async () => {
      const dir = tempDir('outbox');
      const { outbox } = await openOutbox(dir, { capBytes: 8 * 1024 });
      const reports: Array<Partial<Record<Severity, number>>> = [];
      outbox.onOverflow = (dropped) => reports.push(dropped);
      for (let i = 0; i < 5; i++) await outbox.append(draft(`alert${i}`, 'alert'));
      for (let i = 0; i < 100; i++) await outbox.append(draft(`info${i}`, 'info'));
      for (let i = 0; i < 5; i++) await outbox.append(draft(`warning${i}`, 'warning'));
      await new Promise((r) => setImmediate(r));

      const kept = reasons(await outbox.read(0, 1000));
      expect(kept.filter((r) => r.startsWith('alert'))).toEqual(['alert0', 'alert1', 'alert2', 'alert3', 'alert4']);
      expect(kept.filter((r) => r.startsWith('warning'))).toEqual(['warning0', 'warning1', 'warning2', 'warning3', 'warning4']);
      const infos = kept.filter((r) => r.startsWith('info'));
      expect(infos[infos.length - 1]).toBe('info99');
      expect(infos).not.toContain('info0');
      expect(outbox.pendingBytes).toBeLessThanOrEqual(8 * 1024);
      expect(reports.at(-1)).toEqual({ info: 100 - infos.length });
      await outbox.close();
    });

    it('never drops an alert to make room for something less important', async () => {
      const dir = tempDir('outbox');
      const { outbox } = await openOutbox(dir, { capBytes: 4 * 1024 });
      for (let i = 0; i < 200; i++) await outbox.append(draft(`alert${i}`, 'alert'));
      await outbox.append(draft('late-info', 'info'));
      const kept = reasons(await outbox.read(0, 1000));
      expect(kept).not.toContain('late-info');
      expect(kept.at(-1)).toBe('alert199');
      expect(outbox.dropped.info).toBe(1);
      await outbox.close();
    });

    it("lets the tray's problem reports go before any other event, whatever their severity", async () => {
      // 1,000 virus reports (alerts) once pushed out the older evidence of a game being run.
      const dir = tempDir('outbox');
      const { outbox } = await openOutbox(dir, { capBytes: 16 * 1024 });
      const detection: EventDraft = {
        type: 'software.detected',
        severity: 'warning',
        time: '2026-11-23T09:00:00.000Z',
        data: { ruleId: 'cat-game', category: 'game', action: 'report', audit: false },
      };
      const detected = await outbox.append(detection);
      const notice = await outbox.append(draft('a-notice', 'notice'));
      const reports: Array<Promise<unknown>> = [];
      for (let i = 0; i < 300; i++)
        reports.push(
          outbox.append({ type: 'problem.reported', severity: 'alert', time: '2026-11-23T09:01:00.000Z', data: { kind: 'virus', text: `virus ${i}` } }),
        );
      await Promise.all(reports);
      const kept = await outbox.read(0, 1000);
      expect(kept.map((e) => e.seq)).toEqual(expect.arrayContaining([detected.seq, notice.seq]));
      expect(outbox.pendingBytes).toBeLessThanOrEqual(16 * 1024);
      // The reports still kept are the newest: the oldest went first.
      const keptReports = kept.filter((e) => e.type === 'problem.reported');
      expect(keptReports.length).toBeGreaterThan(0);
      expect(keptReports.at(-1)!.data).toMatchObject({ text: 'virus 299' });
      expect(keptReports[0]!.data).not.toMatchObject({ text: 'virus 0' });
      await outbox.close();
      // Recovery knows which events are reports too.
      const again = await openOutbox(dir, { capBytes: 16 * 1024 });
      await again.outbox.append(draft('x'.repeat(2000), 'debug'));
      await again.outbox.append(draft('y'.repeat(2000), 'debug'));
      const after = await again.outbox.read(0, 1000);
      expect(after.map((e) => e.seq)).toEqual(expect.arrayContaining([detected.seq, notice.seq]));
      expect(after.filter((e) => e.type === 'agent.stopped' && e.severity === 'debug')).toHaveLength(2);
      await again.outbox.close();
    });
  });

  describe('the size of one event', () => {
    it('refuses an event larger than it keeps with a coded error, and uses no sequence number for it', async () => {
      const dir = tempDir('outbox');
      const { outbox } = await openOutbox(dir, { maxRecordBytes: 4096 });
      await outbox.append(draft('small'));
      await expect(outbox.append(draft('x'.repeat(5000)))).rejects.toMatchObject({ code: 'INV_ERR_EVENT_TOO_LARGE' });
      expect((await outbox.append(draft('next'))).seq).toBe(2);
      expect(reasons(await outbox.read(0, 10))).toEqual(['small', 'next']);
      await outbox.close();
    });

    it('reads a batch bounded in bytes as well as in count, and always at least one event', async () => {
      const dir = tempDir('outbox');
      const { outbox } = await openOutbox(dir);
      for (let i = 0; i < 10; i++) await outbox.append(draft(`${i}`.padEnd(1000, '.')));
      const batch = await outbox.read(0, 10, { maxBytes: 3500 });
      expect(batch.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(Buffer.byteLength(JSON.stringify(batch))).toBeLessThanOrEqual(3500);
      expect((await outbox.read(0, 10, { maxBytes: 10 })).map((e) => e.seq)).toEqual([1]);
      expect(outbox.unsentAfter(4)).toBe(6);
      await outbox.close();
    });
  });
});
