import { InvigilatorError } from '../../../shared/errors';
import { PROTOCOL_LIMITS } from '../../../shared/protocol/primitives';
import { descriptorText } from '../../../shared/usb/descriptor-text';

/**
 * The installed-software inventory: one reader per OS behind one interface.
 *
 * - Linux (`inventory-linux.ts`): `dpkg-query` and/or `rpm -qa`, whichever exists.
 * - Windows (`inventory-win32.ts`): the uninstall registry keys, through PowerShell.
 * - macOS (`inventory-darwin.ts`): `.app` bundles in `/Applications` and each user's `~/Applications`.
 *
 * Everything a reader returns is made safe here: names, versions and
 * publishers come from package metadata anyone can write (a pupil can create
 * a per-user uninstall key or an `.app` folder), so they are cleaned and capped
 * once, where they are read, to what the `software.installed` event accepts.
 */

/** One program as the keeper and the `software.installed` / `software.removed` events carry it. */
export interface InstalledProgram {
  name: string;
  version?: string;
  publisher?: string;
  /** Where it was found: `dpkg`, `rpm`, `registry:hklm`, `registry:hku:<sid>`, `bundles:/Applications`, … */
  source: string;
}

/** A source that could not be read this time: what it held before is kept, neither re-reported nor reported removed. */
export interface UnreadSource {
  source: string;
  code: 'INV_ERR_INVENTORY_UNREADABLE';
  message: string;
}

/**
 * What one look found. `sources` names every source read in full: only for
 * those can a program missing now be reported removed. A per-user source
 * that is not there this time (a Windows user's hive is loaded only while
 * they are signed in) is simply not named, so signing out is not uninstalling.
 */
export interface InventorySnapshot {
  programs: InstalledProgram[];
  sources: string[];
  unread: UnreadSource[];
  /** Entries of sources read in full that were left out because they could not be read (no name, garbage): for the log. */
  skipped?: number;
}

export interface InventorySource {
  /** Resolves with what could be read; rejects (INV_ERR_INVENTORY_UNREADABLE) only when nothing could. */
  list(): Promise<InventorySnapshot>;
}

/** The `name` limit of the protocol: every string of an inventory event is capped to it. */
export const INVENTORY_TEXT_MAX = PROTOCOL_LIMITS.maxNameLength;

/** Most programs one source may hold; a source past it is left unread (and kept as it was) rather than cut short. */
export const MAX_PROGRAMS_PER_SOURCE = 10_000;

export function unreadable(message: string): InvigilatorError {
  return new InvigilatorError('INV_ERR_INVENTORY_UNREADABLE', message.slice(0, 500));
}

/** Text from package metadata as an event can carry it: controls and bidi overrides gone, lone surrogates replaced, capped; undefined when nothing is left. */
export function inventoryText(raw: unknown): string | undefined {
  if (typeof raw === 'number' && Number.isFinite(raw)) return String(raw);
  if (typeof raw !== 'string') return undefined;
  return descriptorText(raw, INVENTORY_TEXT_MAX);
}

/** A program from raw fields, or undefined when it has no usable name. */
export function program(source: string, fields: { name: unknown; version?: unknown; publisher?: unknown }): InstalledProgram | undefined {
  const name = inventoryText(fields.name);
  if (!name) return undefined;
  const version = inventoryText(fields.version);
  const publisher = inventoryText(fields.publisher);
  return { name, ...(version ? { version } : {}), ...(publisher ? { publisher } : {}), source };
}

/** What makes two entries the same program: where, what and which version (rpm and Windows can hold two versions side by side). */
export function programKey(p: Pick<InstalledProgram, 'source' | 'name' | 'version'>): string {
  return JSON.stringify([p.source, p.name, p.version ?? '']);
}

/** Drops repeats of a key (the first wins): a multi-arch dpkg package, or one product registered twice under one hive. */
export function distinct(programs: Iterable<InstalledProgram>): InstalledProgram[] {
  const seen = new Map<string, InstalledProgram>();
  for (const p of programs) {
    const key = programKey(p);
    if (!seen.has(key)) seen.set(key, p);
  }
  return [...seen.values()];
}

/** Readers made of several (Linux with both dpkg and rpm, say): every source of each, and nothing when one fails outright. */
export function mergeSnapshots(snapshots: readonly InventorySnapshot[]): InventorySnapshot {
  return {
    programs: distinct(snapshots.flatMap((s) => s.programs)),
    sources: [...new Set(snapshots.flatMap((s) => s.sources))],
    unread: snapshots.flatMap((s) => s.unread),
    skipped: snapshots.reduce((n, s) => n + (s.skipped ?? 0), 0),
  };
}

/** Error text for the log and for an unread source: the code's message, never the program's output. */
export function reasonOf(e: unknown): string {
  if (e instanceof InvigilatorError) return `${e.code}: ${e.message}`.slice(0, 500);
  return (e instanceof Error ? e.message : String(e)).slice(0, 500);
}
