import { createHash } from 'node:crypto';
import type { EventEnvelope } from '../../shared/protocol';
import type { SoftwareRecord } from './store';

/**
 * The installed-software list per device, kept by both stores from the
 * `software.installed` and `software.removed` events they store.
 *
 * A program is (device, source, name, version); its row holds the sequence
 * number of the last event applied to it, and a removed program keeps its row
 * (present false). An event is applied only when the store has just stored it
 * (a resend changes nothing) and only when its sequence number is higher than
 * the row's, so the list is what the device's events say in sequence order,
 * whatever order they were stored in: two collector processes storing one
 * device's overlapping resends at once cannot bring a removed program back.
 */

export const isSoftwareEvent = (type: string): boolean => type === 'software.installed' || type === 'software.removed';

/** One event's effect on one row. `version` is '' when the event had none. */
export interface SoftwareChange {
  /** SHA-256 (hex) of the JSON array [source, name, version]: the row's key within the device. */
  key: string;
  source: string;
  name: string;
  /** The name in lower case (JavaScript's toLowerCase, so both stores fold alike): what the list is sorted and filtered by. */
  nameKey: string;
  version: string;
  publisher: string | null;
  present: boolean;
  seq: number;
  /** The event's own time (the device's clock). */
  time: string;
}

export function softwareChange(e: EventEnvelope): SoftwareChange | undefined {
  if (e.type !== 'software.installed' && e.type !== 'software.removed') return undefined;
  const { source, name } = e.data;
  const version = e.data.version ?? '';
  const key = createHash('sha256')
    .update(JSON.stringify([source, name, version]))
    .digest('hex');
  const publisher = e.type === 'software.installed' ? (e.data.publisher ?? null) : null;
  return { key, source, name, nameKey: nameKey(name), version, publisher, present: e.type === 'software.installed', seq: e.seq, time: e.time };
}

export const nameKey = (name: string): string => name.toLowerCase();

/** What the store holds for a program a batch names: whether it is listed, and the seq of the last event applied to it. */
export interface ProgramState {
  present: boolean;
  seq: number;
}

export interface SoftwarePlan {
  /** The changes to apply, in sequence order; each is applied only over an earlier event (the stores check again). */
  apply: SoftwareChange[];
  /** Programs reported installed that found the list full: stored as events, not listed. */
  refused: number;
  /** Programs listed once the plan is applied. */
  present: number;
}

/**
 * The cap on a device's list (issue 13: 100,000 fake programs went in within
 * 11 s and the list answered 51 MB at once). A batch's stored changes, in
 * sequence order, each applied only over an earlier event about the same
 * program, as both stores apply them; an install of a program not listed
 * now takes a place only while fewer than `cap` are listed, so the earliest
 * programs keep their places and a removal frees one for the next. Changes
 * to a listed program (a new publisher) and removals always apply. Pure: the
 * stores read `held` (the rows of the programs the batch names) and
 * `present` (how many are listed) inside the ingest transaction.
 */
export function planSoftware(changes: readonly SoftwareChange[], held: ReadonlyMap<string, ProgramState>, present: number, cap: number): SoftwarePlan {
  const state = new Map(held);
  const apply: SoftwareChange[] = [];
  let refused = 0;
  let listed = present;
  for (const c of [...changes].sort((a, b) => a.seq - b.seq)) {
    const row = state.get(c.key);
    if (row && row.seq >= c.seq) continue;
    if (c.present && !row?.present) {
      if (listed >= cap) {
        refused++;
        continue;
      }
      listed++;
    } else if (!c.present && row?.present) listed--;
    state.set(c.key, { present: c.present, seq: c.seq });
    apply.push(c);
  }
  return { apply, refused, present: listed };
}

/**
 * The changes of one batch in rounds, for stores that apply a round in one
 * statement (PostgreSQL): round i holds each program's i-th change by
 * sequence number, so applying the rounds in turn, each change only over an
 * earlier one, gives exactly what applying the events one by one gives
 * (SQLite). Most batches name each program once: one round. A round is in
 * key order: one statement cannot update a row twice, and transactions that
 * lock rows in one order wait for each other instead of deadlocking.
 */
export function changeRounds(changes: Iterable<SoftwareChange>): SoftwareChange[][] {
  const byKey = new Map<string, SoftwareChange[]>();
  for (const c of changes) {
    const list = byKey.get(c.key);
    if (list) list.push(c);
    else byKey.set(c.key, [c]);
  }
  const keys = [...byKey.keys()].sort();
  const rounds: SoftwareChange[][] = [];
  for (const key of keys) {
    const list = byKey.get(key)!.sort((a, b) => a.seq - b.seq);
    list.forEach((c, i) => (rounds[i] ??= []).push(c));
  }
  return rounds;
}

/** A present row as both stores return it, already in the list's order (see CollectorStore.listSoftware). */
export interface SoftwareRow {
  program_key: string;
  source: string;
  name: string;
  version: string;
  publisher: string | null;
  since: string;
}

export const SOFTWARE_COLUMNS = 'program_key, source, name, version, publisher, since';

export function softwareFromRow(row: SoftwareRow): SoftwareRecord {
  return { name: row.name, version: row.version === '' ? null : row.version, publisher: row.publisher, source: row.source, since: row.since };
}

/** The cursor of a page of a device's software: the last row's program key (rows are never deleted, so it always resolves). */
export const SOFTWARE_CURSOR = 'software';
