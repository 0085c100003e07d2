import { randomUUID } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { InvigilatorError } from '../../shared/errors';
import { SEVERITIES, type Severity } from '../../shared/protocol/primitives';
import type { EventDraft, StoredEvent } from '../core/events';
import { writeAtomically } from '../core/state-file';
import { evictionOrder, isUserCaused } from './eviction';
import { RECORD_HEADER_BYTES, SEGMENT_MAGIC, encodeRecord, scanSegment } from './record-codec';

// The shapes live in the core (every capability names them); kept here too for the outbox's own callers.
export type { EventDraft, StoredEvent } from '../core/events';

export interface OutboxOptions {
  dir: string;
  /** Most bytes of unsent events kept. Past it, the overflow rule drops the least important. */
  capBytes: number;
  /** A segment is closed and a new one started past this size. */
  segmentBytes: number;
  /**
   * Largest single record; anything larger is refused at append (INV_ERR_EVENT_TOO_LARGE). Far below the
   * collector's frame limit, so that any event kept can be sent in a batch of its own.
   */
  maxRecordBytes: number;
  /** Off only in benchmarks that measure the cost of fsync itself. */
  sync: boolean;
}

export const DEFAULT_OUTBOX_OPTIONS: Omit<OutboxOptions, 'dir'> = {
  capBytes: 256 * 1024 * 1024,
  segmentBytes: 8 * 1024 * 1024,
  maxRecordBytes: 256 * 1024,
  sync: true,
};

/** What recovery found, and what the overflow rule dropped: the agent turns these into events. */
export interface OutboxReport {
  corrupt: Array<{ segment: string; offset: number; bytesSkipped: number }>;
  tornBytes: number;
}

interface Entry {
  seq: number;
  severity: Severity;
  /** A problem report from the tray: the first to go when the outbox is over its cap. */
  userCaused: boolean;
  segment: number;
  offset: number;
  length: number;
}

interface PendingAppend {
  record: Buffer;
  entry: Entry;
  stored: StoredEvent;
  resolve: (e: StoredEvent) => void;
  reject: (e: Error) => void;
}

const segmentName = (n: number) => `${String(n).padStart(10, '0')}.seg`;
const STATE_FILE = 'state.json';

/**
 * The agent's disk outbox. Every event is written and synced here before
 * anything else happens; it leaves only when the collector has acknowledged
 * it. Appends are group-committed: one write and one fdatasync per flush,
 * however many producers are waiting.
 */
export class Outbox {
  private entries: Entry[] = [];
  private readonly segments = new Map<number, { handle: FileHandle; size: number; live: number }>();
  private active = 0;
  private nextSeq = 1;
  private ackedSeq = 0;
  private liveBytes = 0;
  private queue: PendingAppend[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  /** Set while renumbering: appends queue but are not written until it is done. */
  private paused = false;
  /**
   * No state file and no segments were found: this outbox does not know what
   * the collector already holds for this device. Its sequence numbers mean
   * nothing until `renumberAfter` has been told.
   */
  fresh = false;
  /** Events dropped by the overflow rule since this outbox opened, by severity. */
  readonly dropped: Partial<Record<Severity, number>> = {};
  /** Called after the overflow rule has dropped events, so the agent can report it. */
  onOverflow: (dropped: Partial<Record<Severity, number>>) => void = () => undefined;

  private constructor(private readonly options: OutboxOptions) {}

  static async open(options: OutboxOptions): Promise<{ outbox: Outbox; report: OutboxReport }> {
    const outbox = new Outbox(options);
    const report = await outbox.recover();
    return { outbox, report };
  }

  get pendingCount(): number {
    return this.entries.length;
  }

  get pendingBytes(): number {
    return this.liveBytes;
  }

  get lastAckedSeq(): number {
    return this.ackedSeq;
  }

  get maxRecordBytes(): number {
    return this.options.maxRecordBytes;
  }

  /**
   * Writes an event durably; resolves once it is on disk. An event larger than
   * `maxRecordBytes` is refused with INV_ERR_EVENT_TOO_LARGE and takes no
   * sequence number, so the numbers stay gap-free.
   */
  append(draft: EventDraft): Promise<StoredEvent> {
    if (this.closed) return Promise.reject(new Error('outbox closed'));
    const stored = { ...draft, id: randomUUID(), seq: this.nextSeq } as StoredEvent;
    const record = encodeRecord(Buffer.from(JSON.stringify(stored)));
    if (record.length > this.options.maxRecordBytes)
      return Promise.reject(new EventTooLargeError(draft.type, record.length - RECORD_HEADER_BYTES, this.options.maxRecordBytes - RECORD_HEADER_BYTES));
    this.nextSeq++;
    return new Promise((resolve, reject) => {
      const entry: Entry = {
        seq: stored.seq,
        severity: stored.severity,
        userCaused: isUserCaused(stored.type),
        segment: 0,
        offset: 0,
        length: record.length,
      };
      this.queue.push({ record, entry, stored, resolve, reject });
      this.scheduleFlush();
    });
  }

  /**
   * Unacknowledged events after `afterSeq`, oldest first, at most `max`. With
   * `maxBytes`, also no more than fit in that many bytes as a JSON array, each
   * counted `extraBytesPerEvent` larger (what the link adds to every event); but
   * always at least one event, however large, so that the caller can decide
   * what to do with it.
   */
  async read(afterSeq: number, max: number, bound: { maxBytes?: number; extraBytesPerEvent?: number } = {}): Promise<StoredEvent[]> {
    // A copy of the index: an ack during the reads below splices this.entries, and
    // walking the live array by position would then skip events.
    const start = lowerBound(this.entries, afterSeq + 1);
    let end = Math.min(this.entries.length, start + max);
    if (bound.maxBytes !== undefined) {
      // "[" and "]", then each event's JSON, the link's additions and a comma.
      let bytes = 2;
      for (let i = start; i < end; i++) {
        bytes += this.entries[i]!.length - RECORD_HEADER_BYTES + (bound.extraBytesPerEvent ?? 0) + (i > start ? 1 : 0);
        if (bytes > bound.maxBytes && i > start) {
          end = i;
          break;
        }
      }
    }
    const wanted = this.entries.slice(start, end);
    const out: StoredEvent[] = [];
    for (const e of wanted) {
      const segment = this.segments.get(e.segment);
      if (!segment) continue;
      const buf = Buffer.allocUnsafe(e.length);
      await segment.handle.read(buf, 0, e.length, e.offset);
      out.push(JSON.parse(buf.subarray(8).toString('utf8')) as StoredEvent);
    }
    return out;
  }

  /** How many unacknowledged events come after `seq`. */
  unsentAfter(seq: number): number {
    return this.entries.length - lowerBound(this.entries, seq + 1);
  }

  /** The collector holds everything up to `seq`: forget it, and delete segments that hold nothing live. */
  async ack(seq: number): Promise<void> {
    if (seq <= this.ackedSeq) return;
    this.ackedSeq = seq;
    const cut = lowerBound(this.entries, seq + 1);
    for (const e of this.entries.splice(0, cut)) this.forget(e);
    await this.writeState();
    await this.dropDeadSegments();
  }

  async close(): Promise<void> {
    await this.flushing;
    this.closed = true;
    for (const s of this.segments.values()) await s.handle.close();
    this.segments.clear();
  }

  // ---- writing -------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushing || this.paused) return;
    this.flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flushLoop());
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.writeBatch(batch);
          for (const p of batch) p.resolve(p.stored);
        } catch (e) {
          for (const p of batch) p.reject(e instanceof Error ? e : new Error(String(e)));
        }
      }
    } finally {
      this.flushing = undefined;
      if (this.queue.length > 0) this.scheduleFlush();
    }
  }

  private async writeBatch(batch: PendingAppend[]): Promise<void> {
    const incoming = batch.reduce((n, p) => n + p.record.length, 0);
    this.applyOverflowRule(batch, incoming);
    const kept = batch.filter((p) => p.entry.segment !== -1);
    let segment = this.segments.get(this.active)!;
    if (segment.size >= this.options.segmentBytes) segment = await this.startSegment(this.active + 1);
    let offset = segment.size;
    for (const p of kept) {
      p.entry.segment = this.active;
      p.entry.offset = offset;
      offset += p.record.length;
    }
    const bytes = Buffer.concat(kept.map((p) => p.record));
    if (bytes.length > 0) {
      await segment.handle.write(bytes, 0, bytes.length, segment.size);
      if (this.options.sync) await segment.handle.datasync();
      segment.size += bytes.length;
      segment.live += kept.length;
      for (const p of kept) {
        this.entries.push(p.entry);
        this.liveBytes += p.entry.length;
      }
    }
  }

  /**
   * Makes room under the byte cap. Candidates are everything unsent plus the
   * incoming batch, in `evictionOrder`: the tray's problem reports first, then
   * the lowest severity, oldest first within each, so blocks and tamper
   * reports (`alert`) are the last to go and no one's reports push them out.
   */
  private applyOverflowRule(batch: PendingAppend[], incoming: number): void {
    let excess = this.liveBytes + incoming - this.options.capBytes;
    if (excess <= 0) return;
    const victims: Array<{ entry: Entry; pending?: PendingAppend }> = [
      ...this.entries.map((entry) => ({ entry })),
      ...batch.map((pending) => ({ entry: pending.entry, pending })),
    ].sort((a, b) => evictionOrder(a.entry, b.entry));
    const droppedNow = new Set<Entry>();
    for (const v of victims) {
      if (excess <= 0) break;
      excess -= v.entry.length;
      droppedNow.add(v.entry);
      this.dropped[v.entry.severity] = (this.dropped[v.entry.severity] ?? 0) + 1;
      if (v.pending) v.entry.segment = -1;
    }
    if (droppedNow.size > 0) {
      this.entries = this.entries.filter((e) => {
        if (!droppedNow.has(e)) return true;
        this.forget(e);
        return false;
      });
    }
    if (droppedNow.size > 0) queueMicrotask(() => this.onOverflow({ ...this.dropped }));
  }

  private forget(e: Entry): void {
    this.liveBytes -= e.length;
    const segment = this.segments.get(e.segment);
    if (segment) segment.live -= 1;
  }

  private async startSegment(n: number): Promise<{ handle: FileHandle; size: number; live: number }> {
    const handle = await open(join(this.options.dir, segmentName(n)), 'a+', 0o600);
    await handle.write(SEGMENT_MAGIC, 0, SEGMENT_MAGIC.length, 0);
    if (this.options.sync) await handle.sync();
    const segment = { handle, size: SEGMENT_MAGIC.length, live: 0 };
    this.segments.set(n, segment);
    this.active = n;
    return segment;
  }

  private async dropDeadSegments(): Promise<void> {
    for (const [n, s] of [...this.segments]) {
      if (n === this.active || s.live > 0) continue;
      this.segments.delete(n);
      await s.handle.close();
      await unlink(join(this.options.dir, segmentName(n)));
    }
  }

  private async writeState(): Promise<void> {
    await writeAtomically(join(this.options.dir, STATE_FILE), JSON.stringify({ ackedSeq: this.ackedSeq }), { flush: this.options.sync });
  }

  /**
   * Moves every unsent event, in order, to sequence numbers after `floor` (the
   * highest the collector holds for this device). Needed once, by a fresh
   * outbox on a device that was enrolled before: its numbers restarted at 1,
   * and the collector would take its events for resends of ones it has.
   */
  async renumberAfter(floor: number): Promise<void> {
    this.fresh = false;
    if (floor === 0) return;
    this.paused = true;
    try {
      await this.flushing;
      const pending = await this.read(0, Number.MAX_SAFE_INTEGER);
      const queued = this.queue;
      let next = floor + 1;
      const renumbered = pending.map((e) => ({ ...e, seq: next++ }) as StoredEvent);
      for (const p of queued) {
        p.stored = { ...p.stored, seq: next++ } as StoredEvent;
        p.entry.seq = p.stored.seq;
        p.record = encodeRecord(Buffer.from(JSON.stringify(p.stored)));
        p.entry.length = p.record.length;
      }
      // The renumbered events go to a new segment, synced, before the old ones are deleted.
      const old = [...this.segments.keys()];
      const segment = await this.startSegment(this.active + 1);
      const records = renumbered.map((e) => encodeRecord(Buffer.from(JSON.stringify(e))));
      const entries: Entry[] = [];
      let offset = segment.size;
      for (let i = 0; i < records.length; i++) {
        entries.push({
          seq: renumbered[i]!.seq,
          severity: renumbered[i]!.severity,
          userCaused: isUserCaused(renumbered[i]!.type),
          segment: this.active,
          offset,
          length: records[i]!.length,
        });
        offset += records[i]!.length;
      }
      const bytes = Buffer.concat(records);
      if (bytes.length > 0) {
        await segment.handle.write(bytes, 0, bytes.length, segment.size);
        if (this.options.sync) await segment.handle.datasync();
      }
      segment.size += bytes.length;
      segment.live = entries.length;
      this.entries = entries;
      this.liveBytes = bytes.length;
      this.ackedSeq = floor;
      this.nextSeq = next;
      await this.writeState();
      for (const n of old) {
        const s = this.segments.get(n)!;
        this.segments.delete(n);
        await s.handle.close();
        await unlink(join(this.options.dir, segmentName(n)));
      }
    } finally {
      this.paused = false;
      if (this.queue.length > 0) this.scheduleFlush();
    }
  }

  // ---- recovery ------------------------------------------------------------

  /**
   * Rebuilds the index from disk after any stop, clean or not. Keeps every
   * whole record; truncates a torn tail; skips and reports a corrupt record.
   */
  private async recover(): Promise<OutboxReport> {
    const { dir, maxRecordBytes } = this.options;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const report: OutboxReport = { corrupt: [], tornBytes: 0 };
    let stateFound = false;
    try {
      const state = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as { ackedSeq?: unknown };
      stateFound = true;
      if (typeof state.ackedSeq === 'number' && Number.isSafeInteger(state.ackedSeq) && state.ackedSeq >= 0) this.ackedSeq = state.ackedSeq;
    } catch {
      // No state yet, or a torn write of it: the segments still say what is unsent.
    }
    const numbers = (await readdir(dir))
      .map((f) => /^(\d{10})\.seg$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    let maxSeq = this.ackedSeq;
    for (const n of numbers) {
      const path = join(dir, segmentName(n));
      const bytes = await readFile(path);
      if (bytes.length < SEGMENT_MAGIC.length || !bytes.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) {
        // A segment created but never given its header: nothing in it was ever acknowledged as written.
        report.tornBytes += bytes.length;
        await unlink(path);
        continue;
      }
      let end = bytes.length;
      let live = 0;
      for (const step of scanSegment(bytes, SEGMENT_MAGIC.length, maxRecordBytes)) {
        if (step.kind === 'torn') {
          end = step.offset;
          break;
        }
        if (step.kind === 'corrupt') {
          report.corrupt.push({ segment: segmentName(n), offset: step.offset, bytesSkipped: step.skipped });
          continue;
        }
        let parsed: { seq?: unknown; severity?: unknown; type?: unknown };
        try {
          parsed = JSON.parse(step.payload.toString('utf8')) as typeof parsed;
        } catch {
          report.corrupt.push({ segment: segmentName(n), offset: step.offset, bytesSkipped: step.length + 8 });
          continue;
        }
        const seq = Number(parsed.seq);
        if (!Number.isSafeInteger(seq) || !SEVERITIES.includes(parsed.severity as Severity)) {
          report.corrupt.push({ segment: segmentName(n), offset: step.offset, bytesSkipped: step.length + 8 });
          continue;
        }
        maxSeq = Math.max(maxSeq, seq);
        if (seq <= this.ackedSeq) continue;
        this.entries.push({
          seq,
          severity: parsed.severity as Severity,
          userCaused: isUserCaused(parsed.type),
          segment: n,
          offset: step.offset,
          length: step.length + 8,
        });
        this.liveBytes += step.length + 8;
        live++;
      }
      const handle = await open(path, 'r+');
      if (end < bytes.length) {
        report.tornBytes += bytes.length - end;
        await handle.truncate(end);
        await handle.sync();
      }
      this.segments.set(n, { handle, size: end, live });
      this.active = n;
    }
    this.entries.sort((a, b) => a.seq - b.seq);
    this.nextSeq = maxSeq + 1;
    this.fresh = numbers.length === 0 && !stateFound;
    if (this.segments.size === 0) await this.startSegment(1);
    else if (this.segments.get(this.active)!.size >= this.options.segmentBytes) await this.startSegment(this.active + 1);
    await this.dropDeadSegments();
    return report;
  }
}

/** An event refused at append for its size: the agent records a stand-in (`tooLargeStandIn`) instead. */
export class EventTooLargeError extends InvigilatorError {
  constructor(
    readonly eventType: string,
    readonly bytes: number,
    readonly maxBytes: number,
  ) {
    super('INV_ERR_EVENT_TOO_LARGE', `a ${eventType} event of ${bytes} bytes; the outbox keeps at most ${maxBytes}`);
  }
}

/** First index whose seq is >= `seq` (entries are in seq order). */
function lowerBound(entries: readonly Entry[], seq: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
