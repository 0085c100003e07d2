import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvigilatorError } from '../../../../shared/errors';
import { PROTOCOL_LIMITS } from '../../../../shared/protocol/primitives';
import { eventEnvelope } from '../../../../shared/protocol/events';
import { INVENTORY_STATE_FILE, InventoryKeeper } from '../../../../agent/software/installed/inventory-keeper';
import { LinuxPackageInventory } from '../../../../agent/software/installed/linux/inventory-linux';
import type { InstalledProgram, InventorySnapshot, InventorySource } from '../../../../agent/software/installed/inventory-source';
import { DEFAULT_OUTBOX_OPTIONS, type EventDraft, Outbox } from '../../../../agent/outbox/outbox';
import { createExecFileRunner } from '../../../../agent/os/command-runner';
import { eventually, tempDir } from '../../../support/cli';
import { silentLogger } from '../../../support/harness';

const gimp: InstalledProgram = { name: 'GIMP', version: '2.10.34', publisher: 'The GIMP Team', source: 'dpkg' };
const vlc: InstalledProgram = { name: 'vlc', version: '3.0.21', publisher: 'VideoLAN', source: 'dpkg' };
const zoom: InstalledProgram = { name: 'Zoom Workplace', version: '6.0.11', source: 'registry:hku:S-1-5-21-1-2-3-1001' };

/** A source whose answer the test sets; counts how often it was asked. */
class FakeSource implements InventorySource {
  calls = 0;
  gate: Promise<void> | undefined;
  answer: InventorySnapshot | Error = { programs: [], sources: [], unread: [] };

  set(programs: InstalledProgram[], sources = [...new Set(programs.map((p) => p.source))]): void {
    this.answer = { programs, sources, unread: [] };
  }

  async list(): Promise<InventorySnapshot> {
    this.calls++;
    await this.gate;
    if (this.answer instanceof Error) throw this.answer;
    return structuredClone(this.answer);
  }
}

function setUp(dataDir = tempDir('inventory')) {
  const source = new FakeSource();
  const events: EventDraft[] = [];
  let failAfter = Infinity;
  const record = async (draft: EventDraft) => {
    if (events.length >= failAfter) throw new Error('outbox closed');
    events.push(draft);
  };
  const keeper = (intervalMs = 3_600_000) =>
    new InventoryKeeper({ source, dataDir, record, logger: silentLogger(), now: () => new Date('2026-11-23T09:00:00.000Z'), intervalMs });
  const take = () => events.splice(0, events.length).map((e) => [e.type, e.severity, e.data]);
  return { source, events, dataDir, keeper, take, failAfter: (n: number) => (failAfter = n) };
}

describe('the inventory keeper', () => {
  it('reports every program at the first look (severity info), then only changes (notice), one event per change', async () => {
    const t = setUp();
    t.source.set([gimp, vlc, zoom]);
    const k = t.keeper();
    expect(await k.refresh()).toEqual({ ok: true, installed: 3, removed: 0, updated: 0, programs: 3, unread: [] });
    expect(t.take()).toEqual([
      ['software.installed', 'info', { name: 'GIMP', version: '2.10.34', publisher: 'The GIMP Team', source: 'dpkg' }],
      ['software.installed', 'info', { name: 'vlc', version: '3.0.21', publisher: 'VideoLAN', source: 'dpkg' }],
      ['software.installed', 'info', { name: 'Zoom Workplace', version: '6.0.11', source: 'registry:hku:S-1-5-21-1-2-3-1001' }],
    ]);
    expect(existsSync(join(t.dataDir, INVENTORY_STATE_FILE))).toBe(true);

    expect(await k.refresh()).toMatchObject({ ok: true, installed: 0, removed: 0, updated: 0 });
    expect(t.take()).toEqual([]);

    // An upgrade is the old version removed and the new one installed; vlc removed; a new publisher is reported again.
    t.source.set([
      { ...gimp, version: '2.10.36' },
      { ...zoom, publisher: 'Zoom Video Communications, Inc.' },
    ]);
    expect(await k.refresh()).toMatchObject({ ok: true, installed: 1, removed: 2, updated: 1, programs: 2 });
    expect(t.take()).toEqual([
      ['software.removed', 'notice', { name: 'GIMP', version: '2.10.34', source: 'dpkg' }],
      ['software.removed', 'notice', { name: 'vlc', version: '3.0.21', source: 'dpkg' }],
      ['software.installed', 'notice', { name: 'GIMP', version: '2.10.36', publisher: 'The GIMP Team', source: 'dpkg' }],
      ['software.installed', 'notice', { ...zoom, publisher: 'Zoom Video Communications, Inc.' }],
    ]);
  });

  it('keeps what it reported across a restart: a new agent reports nothing that has not changed', async () => {
    const t = setUp();
    t.source.set([gimp, vlc]);
    await t.keeper().refresh();
    t.take();
    const restarted = t.keeper();
    expect(await restarted.refresh()).toMatchObject({ ok: true, installed: 0, removed: 0 });
    expect(t.take()).toEqual([]);
    expect(restarted.programs).toHaveLength(2);
    t.source.set([gimp]);
    await t.keeper().refresh();
    expect(t.take()).toEqual([['software.removed', 'notice', { name: 'vlc', version: '3.0.21', source: 'dpkg' }]]);
  });

  it("keeps a source it could not read (a signed-out user's hive) as it was, and compares it again once it is back", async () => {
    const t = setUp();
    t.source.set([gimp, zoom]);
    const k = t.keeper();
    await k.refresh();
    t.take();
    // The user signed out: their hive is not among the sources read.
    t.source.set([gimp], ['dpkg']);
    expect(await k.refresh()).toMatchObject({ ok: true, removed: 0, programs: 2 });
    expect(t.take()).toEqual([]);
    // Back, without Zoom: now it is removed.
    t.source.set([gimp], ['dpkg', zoom.source]);
    await k.refresh();
    expect(t.take()).toEqual([['software.removed', 'notice', { name: 'Zoom Workplace', version: '6.0.11', source: zoom.source }]]);
  });

  it('does not believe a source of 20 or more programs that suddenly lists none', async () => {
    const t = setUp();
    const many = Array.from({ length: 25 }, (_, i) => ({ name: `pkg${i}`, version: '1', source: 'dpkg' }));
    t.source.set([...many, zoom]);
    const k = t.keeper();
    await k.refresh();
    t.take();
    t.source.set([zoom], ['dpkg', zoom.source]);
    const result = await k.refresh();
    expect(result).toMatchObject({ ok: true, removed: 0, programs: 26 });
    expect(result.ok && result.unread).toEqual([expect.objectContaining({ source: 'dpkg', code: 'INV_ERR_INVENTORY_UNREADABLE' })]);
    expect(t.take()).toEqual([]);
    // Only the suspect source: on its own it fails the look, with a code.
    t.source.set([], ['dpkg']);
    expect(await k.refresh()).toMatchObject({ ok: false, code: 'INV_ERR_INVENTORY_UNREADABLE' });
  });

  it('records nothing and answers with the code when the inventory cannot be read', async () => {
    const t = setUp();
    t.source.set([gimp]);
    const k = t.keeper();
    await k.refresh();
    t.take();
    t.source.answer = new InvigilatorError('INV_ERR_INVENTORY_UNREADABLE', 'dpkg-query exited with 2');
    expect(await k.refresh()).toEqual({ ok: false, code: 'INV_ERR_INVENTORY_UNREADABLE', message: expect.stringContaining('dpkg-query exited with 2') });
    t.source.answer = new TypeError('something unexpected');
    expect(await k.refresh()).toMatchObject({ ok: false, code: 'INV_ERR_INVENTORY_UNREADABLE' });
    expect(t.take()).toEqual([]);
    expect(k.programs).toEqual([gimp]);
  });

  it('never reports more programs than the collector lists for one computer (issue 13, item 9)', async () => {
    const t = setUp();
    const many = (n: number, from = 0) => Array.from({ length: n }, (_, i): InstalledProgram => ({ name: `pkg-${from + i}`, version: '1', source: 'dpkg' }));
    // One over the cap: nothing is sent, the look says why, and what was reported before stays.
    t.source.set([gimp]);
    const k = t.keeper();
    await k.refresh();
    t.take();
    t.source.set(many(PROTOCOL_LIMITS.maxInstalledPrograms + 1));
    expect(await k.refresh()).toMatchObject({ ok: false, code: 'INV_ERR_INVENTORY_TOO_LARGE' });
    expect(t.take()).toEqual([]);
    expect(k.programs).toEqual([gimp]);
    // Exactly the cap is sent, removals first, so the collector's list never holds more on the way.
    t.source.set(many(PROTOCOL_LIMITS.maxInstalledPrograms));
    expect(await k.refresh()).toMatchObject({ ok: true, installed: PROTOCOL_LIMITS.maxInstalledPrograms, removed: 1 });
    const sent = t.take();
    expect(sent[0]![0]).toBe('software.removed');
    expect(sent.filter((e) => e[0] === 'software.installed')).toHaveLength(PROTOCOL_LIMITS.maxInstalledPrograms);
  });

  it('reports again what it could not record: the list is saved only after the events', async () => {
    const t = setUp();
    t.source.set([gimp, vlc, zoom]);
    t.failAfter(1);
    expect(await t.keeper().refresh()).toMatchObject({ ok: false, code: 'INV_ERR_INTERNAL' });
    t.take();
    t.failAfter(Infinity);
    // A restart (or the next look) reports all three, as the first look would have.
    expect(await t.keeper().refresh()).toMatchObject({ ok: true, installed: 3 });
    expect(t.take()).toHaveLength(3);
  });

  it('starts again from nothing when its file is damaged, reporting everything as installed', async () => {
    const t = setUp();
    writeFileSync(join(t.dataDir, INVENTORY_STATE_FILE), '{"version":1,"programs":[["dpkg"');
    t.source.set([gimp]);
    expect(await t.keeper().refresh()).toMatchObject({ ok: true, installed: 1 });
    expect(JSON.parse(readFileSync(join(t.dataDir, INVENTORY_STATE_FILE), 'utf8'))).toEqual({
      version: 1,
      programs: [['dpkg', 'GIMP', '2.10.34', 'The GIMP Team']],
    });
  });

  it('looks at start and then every interval, shares one look among refreshes asked for meanwhile, and stops', async () => {
    const t = setUp();
    t.source.set([gimp]);
    const k = t.keeper(20);
    await k.start();
    t.source.set([gimp, vlc]);
    await eventually(() => (t.events.length >= 2 ? true : undefined));
    await k.stop();
    expect(t.take().map((e) => e[2])).toEqual([gimp, vlc]);

    // Three refreshes while a look is held up: the look under way, then one more for all of them.
    const held = setUp();
    held.source.set([gimp]);
    let release!: () => void;
    held.source.gate = new Promise((r) => (release = r));
    const keeper = held.keeper();
    const results = [keeper.refresh(), keeper.refresh(), keeper.refresh()];
    release();
    await Promise.all(results);
    expect(held.source.calls).toBe(2);
    expect(results[1]).toBe(results[2]);
  });
});

const hasDpkg = (() => {
  try {
    execFileSync('dpkg-query', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

(hasDpkg ? describe : describe.skip)(`the keeper on the real dpkg-query${hasDpkg ? '' : ' [skipped: dpkg-query is not installed here]'}`, () => {
  it('records one valid software.installed per package into a real outbox, then nothing while nothing changes', async () => {
    const dataDir = tempDir('inventory-real');
    const { outbox } = await Outbox.open({ ...DEFAULT_OUTBOX_OPTIONS, dir: join(dataDir, 'outbox') });
    try {
      const keeper = new InventoryKeeper({
        source: new LinuxPackageInventory(createExecFileRunner()),
        dataDir,
        record: async (d) => void (await outbox.append(d)),
        logger: silentLogger(),
      });
      const first = await keeper.refresh();
      // One per (name, version): a multi-arch package installed for two architectures is one program.
      const packages = new Set(
        execFileSync('dpkg-query', ['-W', '-f=${Package} ${Version} ${db:Status-Status}\\n'], { encoding: 'utf8' })
          .split('\n')
          .filter((l) => / (installed|triggers-pending|triggers-awaited)$/.test(l))
          .map((l) => l.replace(/ \S+$/, '')),
      );
      expect(first).toMatchObject({ ok: true, installed: packages.size, removed: 0 });
      expect(packages.size).toBeGreaterThan(0);
      const stored = await outbox.read(0, 100_000);
      expect(stored).toHaveLength(first.ok ? first.installed : -1);
      expect(stored.map((e) => e.seq)).toEqual(stored.map((_, i) => i + 1));
      for (const e of stored) {
        const checked = eventEnvelope.safeParse({ ...e, deviceId: 'dev-1' });
        expect(checked.success).toBe(true);
        expect(e).toMatchObject({ type: 'software.installed', severity: 'info' });
      }
      expect(stored.some((e) => e.type === 'software.installed' && e.data.name === 'dpkg')).toBe(true);

      expect(await keeper.refresh()).toMatchObject({ ok: true, installed: 0, removed: 0 });
      expect(outbox.pendingCount).toBe(stored.length);
    } finally {
      await outbox.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
