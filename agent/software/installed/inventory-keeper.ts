/**
 * Keeps the collector's copy of this computer's installed software up to date.
 *
 * ```ts
 * const keeper = new InventoryKeeper({
 *   source,      // InventorySource: LinuxPackageInventory(runner), RegistryInventory(powershell), BundleInventory({ runner })
 *   dataDir,     // config.dataDir: the list last reported is kept in <dataDir>/software-inventory.json
 *   record,      // (draft: EventDraft) => Promise<void>: the outbox
 *   logger,      // the agent's winston logger
 *   now,         // optional () => Date, default the clock
 *   intervalMs,  // optional, default 15 minutes (INVENTORY_INTERVAL_MS)
 * });
 * void keeper.start();   // looks now, then every intervalMs; never rejects
 * // the collector's `refresh-inventory` command:
 * const r = await keeper.refresh();   // { ok: true, installed, removed, updated, programs, unread } or { ok: false, code, message }
 * await keeper.stop();   // no more looks; waits for one under way
 * ```
 *
 * Each look lists what is installed now and compares it with the list kept
 * on disk, by (source, name, version): one `software.removed` per program
 * gone, one `software.installed` per program new (an upgrade is both: the old
 * version removed, the new one installed), and `software.installed` again for
 * a program whose publisher changed. Then the new list is saved. Events are
 * recorded before the list is saved, so a crash in between reports those
 * changes again at the next start; the collector applies each change by
 * sequence number, so a repeat changes nothing there.
 *
 * **The first look reports every program** (about 1,000 to 3,000 on a Linux
 * desktop, a few hundred on Windows or a Mac) as `software.installed`, with
 * severity `info`; changes after it are `notice`. That flood is accepted, not
 * batched: the outbox takes thousands of events in one group commit (they are
 * appended together and share one fsync), the link sends them 200 to a batch,
 * and the collector stores them at tens of thousands a second. One event per
 * program keeps the protocol as it is and lets the collector's list be built
 * from the events alone. If the outbox is full, `info` goes before `notice`,
 * so a dropped baseline costs completeness, never a later change.
 *
 * Only sources read in full are compared (InventorySnapshot.sources): a
 * Windows user's hive that is not loaded, or a folder that could not be read,
 * keeps what it held. A source that held 20 or more programs and now lists
 * none is taken as unread this time (a package database mid-rebuild, not an
 * empty computer). A look that reads nothing records nothing and resolves
 * with INV_ERR_INVENTORY_UNREADABLE; one that finds more programs than the
 * collector lists for a computer (PROTOCOL_LIMITS.maxInstalledPrograms)
 * records nothing and resolves with INV_ERR_INVENTORY_TOO_LARGE.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { type ErrorCode, InvigilatorError } from '../../../shared/errors';
import type { Logger } from '../../../node-common/logging';
import { PROTOCOL_LIMITS } from '../../../shared/protocol/primitives';
import { JsonStateFile } from '../../core/state-file';
import type { EventDraft, Recorder } from '../../core/events';
import type { Outcome } from '../../core/result';
import { INVENTORY_TEXT_MAX, type InstalledProgram, type InventorySource, type UnreadSource, programKey, reasonOf } from './inventory-source';

export const INVENTORY_INTERVAL_MS = 15 * 60_000;
export const INVENTORY_STATE_FILE = 'software-inventory.json';
/** A source with at least this many programs that suddenly lists none is not believed. */
const SUSPICIOUS_DROP = 20;
/** Events appended together, sharing the outbox's group commit. */
const RECORD_CHUNK = 500;
/**
 * Programs kept and reported at most, all sources together: what the collector lists for one computer
 * (a look finding more reports nothing, so the collector never has to refuse any), and small enough for
 * the state file to stay under JsonStateFile's 4 MiB.
 */
const MAX_KEPT = PROTOCOL_LIMITS.maxInstalledPrograms;

const field = z.string().max(INVENTORY_TEXT_MAX);
/** [source, name, version or null, publisher or null]: compact, since a Linux desktop has thousands. */
const stateSchema = z.strictObject({
  version: z.literal(1),
  programs: z.array(z.tuple([field.min(1), field.min(1), field.nullable(), field.nullable()])).max(MAX_KEPT),
});
type State = z.infer<typeof stateSchema>;

export interface InventoryKeeperOptions {
  source: InventorySource;
  dataDir: string;
  record: Recorder;
  logger: Logger;
  now?: () => Date;
  intervalMs?: number;
}

export type InventoryRefreshResult = Outcome<{ installed: number; removed: number; updated: number; programs: number; unread: UnreadSource[] }>;

export class InventoryKeeper {
  private readonly file: JsonStateFile<State>;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly intervalMs: number;
  private known: Map<string, InstalledProgram> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The look under way (or the last one). */
  private running: Promise<InventoryRefreshResult> | undefined;
  /** A look asked for while one was under way; callers asking meanwhile share it. */
  private queued: Promise<InventoryRefreshResult> | undefined;

  constructor(private readonly options: InventoryKeeperOptions) {
    this.file = new JsonStateFile(join(options.dataDir, INVENTORY_STATE_FILE), stateSchema, () => ({ version: 1, programs: [] }), options.logger);
    this.log = options.logger.child({ component: 'software-inventory' });
    this.now = options.now ?? (() => new Date());
    this.intervalMs = options.intervalMs ?? INVENTORY_INTERVAL_MS;
  }

  /** The first look, now; then one every `intervalMs`. Resolves with the first look's outcome; never rejects. */
  start(): Promise<InventoryRefreshResult> {
    this.stopped = false;
    const first = this.refresh();
    void first.then(() => this.schedule());
    return first;
  }

  /**
   * Looks now (after the look under way, if any) and resolves once the
   * changes are recorded. Never rejects: an unreadable inventory is `ok: false`
   * with its code, which the `refresh-inventory` command reports.
   */
  refresh(): Promise<InventoryRefreshResult> {
    if (this.queued) return this.queued;
    const previous = this.running;
    if (!previous) return (this.running = this.look());
    const next = previous.then(() => {
      this.queued = undefined;
      return (this.running = this.look());
    });
    this.queued = next;
    return next;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.queued;
    await this.running;
  }

  /** The programs as last reported, for tests and diagnostics. */
  get programs(): InstalledProgram[] {
    return [...(this.known?.values() ?? [])];
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.refresh().then(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  private async look(): Promise<InventoryRefreshResult> {
    try {
      return await this.compareAndRecord();
    } catch (e) {
      // The source's failures arrive coded (see compareAndRecord); anything else failed here (the outbox, the state file).
      const code: ErrorCode = e instanceof InvigilatorError ? e.code : 'INV_ERR_INTERNAL';
      const message = reasonOf(e);
      this.log.warn('installed software could not be listed', { code, message });
      return { ok: false, code, message };
    }
  }

  private async load(): Promise<Map<string, InstalledProgram>> {
    if (this.known) return this.known;
    const path = join(this.options.dataDir, INVENTORY_STATE_FILE);
    const exists = await stat(path).then(
      () => true,
      () => false,
    );
    const state = exists ? await this.file.load() : { version: 1 as const, programs: [] };
    this.known = new Map(
      state.programs.map(([source, name, version, publisher]) => {
        const p: InstalledProgram = { name, source, ...(version !== null ? { version } : {}), ...(publisher !== null ? { publisher } : {}) };
        return [programKey(p), p];
      }),
    );
    return this.known;
  }

  private async compareAndRecord(): Promise<InventoryRefreshResult> {
    const before = await this.load();
    const snapshot = await this.options.source.list().catch((e: unknown) => {
      throw e instanceof InvigilatorError ? e : new InvigilatorError('INV_ERR_INVENTORY_UNREADABLE', reasonOf(e));
    });
    const unread = [...snapshot.unread];

    const current = new Map<string, InstalledProgram>();
    const read = new Set(snapshot.sources);
    for (const p of snapshot.programs) if (read.has(p.source)) current.set(programKey(p), p);
    const count = (programs: Iterable<InstalledProgram>, source: string) => {
      let n = 0;
      for (const p of programs) if (p.source === source) n++;
      return n;
    };
    for (const source of [...read]) {
      const held = count(before.values(), source);
      if (held >= SUSPICIOUS_DROP && count(current.values(), source) === 0) {
        read.delete(source);
        unread.push({ source, code: 'INV_ERR_INVENTORY_UNREADABLE', message: `${source} held ${held} programs and now lists none; kept as it was` });
      }
    }
    if (read.size === 0) throw new InvigilatorError('INV_ERR_INVENTORY_UNREADABLE', unread.map((u) => `${u.source}: ${u.message}`).join('; '));

    const after = new Map<string, InstalledProgram>();
    for (const [key, p] of before) if (!read.has(p.source)) after.set(key, p);
    for (const [key, p] of current) if (read.has(p.source)) after.set(key, p);
    if (after.size > MAX_KEPT) throw new InvigilatorError('INV_ERR_INVENTORY_TOO_LARGE', `${after.size} programs, more than ${MAX_KEPT}`);

    const byKey = (a: [string, InstalledProgram], b: [string, InstalledProgram]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
    const removed = [...before].filter(([key, p]) => read.has(p.source) && !after.has(key)).sort(byKey);
    const installed = [...after].filter(([key]) => !before.has(key)).sort(byKey);
    const updated = [...after].filter(([key, p]) => before.has(key) && (before.get(key)!.publisher ?? null) !== (p.publisher ?? null)).sort(byKey);

    const baseline = before.size === 0;
    const severity = baseline ? 'info' : 'notice';
    const time = this.now().toISOString();
    const drafts: EventDraft[] = [
      ...removed.map(([, p]): EventDraft => ({
        type: 'software.removed',
        severity,
        time,
        data: { name: p.name, ...(p.version !== undefined ? { version: p.version } : {}), source: p.source },
      })),
      ...[...installed, ...updated].map(([, p]): EventDraft => ({
        type: 'software.installed',
        severity,
        time,
        data: {
          name: p.name,
          ...(p.version !== undefined ? { version: p.version } : {}),
          ...(p.publisher !== undefined ? { publisher: p.publisher } : {}),
          source: p.source,
        },
      })),
    ];
    for (let i = 0; i < drafts.length; i += RECORD_CHUNK) {
      // Appended together, in order (the outbox numbers them as they are called), they share one fsync.
      await Promise.all(drafts.slice(i, i + RECORD_CHUNK).map((d) => this.options.record(d)));
    }
    if (drafts.length > 0 || !this.savedOnce) {
      await this.file.save({
        version: 1,
        programs: [...after.values()].map((p) => [p.source, p.name, p.version ?? null, p.publisher ?? null]),
      });
      this.savedOnce = true;
    }
    this.known = after;

    if (drafts.length > 0) {
      this.log.info('installed software changed', {
        installed: installed.length,
        removed: removed.length,
        updated: updated.length,
        programs: after.size,
        baseline,
      });
    }
    if (unread.length > 0) this.log.warn('some installed software could not be listed; kept as it was', { unread: unread.slice(0, 10) });
    if (snapshot.skipped) this.log.debug('inventory entries skipped', { skipped: snapshot.skipped });
    return { ok: true, installed: installed.length, removed: removed.length, updated: updated.length, programs: after.size, unread };
  }

  private savedOnce = false;
}
