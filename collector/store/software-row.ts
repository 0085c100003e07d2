import { createHash } from 'node:crypto';
import type { EventEnvelope } from '../../shared/protocol';
import type { SoftwareQuery, SoftwareRecord } from './store';

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
  return { key, source, name, version, publisher, present: e.type === 'software.installed', seq: e.seq, time: e.time };
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

/** A present row as both stores return it. */
export interface SoftwareRow {
  source: string;
  name: string;
  version: string;
  publisher: string | null;
  since: string;
}

export const SOFTWARE_COLUMNS = 'source, name, version, publisher, since';

/**
 * Filtered and sorted here rather than in SQL, so both stores answer alike:
 * SQLite's lower() folds only ASCII and PostgreSQL's follows the database's
 * collation. By name without regard to case (JavaScript's toLowerCase, then
 * UTF-16 order), then name, version and source.
 */
export function softwareFromRows(rows: readonly SoftwareRow[], query: SoftwareQuery = {}): SoftwareRecord[] {
  const q = query.q?.toLowerCase();
  const keyed = rows
    .map((r) => ({ row: r, lower: r.name.toLowerCase() }))
    .filter((r) => q === undefined || r.lower.includes(q))
    .sort(
      (a, b) => compare(a.lower, b.lower) || compare(a.row.name, b.row.name) || compare(a.row.version, b.row.version) || compare(a.row.source, b.row.source),
    );
  return keyed.map(({ row }) => ({
    name: row.name,
    version: row.version === '' ? null : row.version,
    publisher: row.publisher,
    source: row.source,
    since: row.since,
  }));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
