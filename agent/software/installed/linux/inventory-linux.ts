import type { CommandRunner } from '../../../os/command-runner';
import {
  type InstalledProgram,
  type InventorySnapshot,
  type InventorySource,
  MAX_PROGRAMS_PER_SOURCE,
  distinct,
  mergeSnapshots,
  program,
  reasonOf,
  unreadable,
} from '../inventory-source';

/**
 * Linux: the package database, through `dpkg-query` (Debian, Ubuntu, Mint)
 * and/or `rpm` (Fedora, RHEL, openSUSE), whichever is installed; both when
 * both are. Each is one command printing one tab-separated line per package;
 * the escapes `\t` and `\n` in the formats are expanded by the programs
 * themselves (no shell is involved).
 */
export const DPKG_QUERY = 'dpkg-query';
export const DPKG_QUERY_ARGS: readonly string[] = ['-W', '-f=${Package}\\t${Version}\\t${Maintainer}\\t${db:Status-Status}\\n'];
export const RPM = 'rpm';
export const RPM_ARGS: readonly string[] = ['-qa', '--qf', '%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{VENDOR}\\n'];

/** A full package list takes a second or two; a locked database can make rpm wait. */
const LIST_TIMEOUT_MS = 120_000;

/**
 * `db:Status-Status` values that mean the package is on the computer and
 * configured (dpkg-query(1)). `triggers-pending` and `triggers-awaited` are
 * installed packages waiting for another package's triggers; counting them
 * out would report a package removed and installed again around every
 * upgrade. `unpacked`, `half-configured`, `half-installed` (mid-install or a
 * failed one) and `config-files` (removed, its configuration kept) are not.
 */
const INSTALLED_STATES = new Set(['installed', 'triggers-pending', 'triggers-awaited']);

/** `Name <address>` → `Name`: the address is not who published it. */
function maintainerName(raw: string): string {
  const cut = raw.replace(/\s*<[^<>]*>\s*$/, '').trim();
  return cut || raw;
}

export interface ParsedList {
  programs: InstalledProgram[];
  /** Lines that did not have the expected shape. */
  skipped: number;
}

/** What `dpkg-query -W -f=…` printed: installed packages only, one per name and version. */
export function parseDpkgQuery(stdout: string): ParsedList {
  const programs: InstalledProgram[] = [];
  let skipped = 0;
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.replace(/\r$/, '').split('\t');
    if (fields.length < 4) {
      skipped++;
      continue;
    }
    const [name, version] = fields;
    // The status is the last field; a maintainer can hold a tab, so it is what lies between.
    const rawStatus = fields[fields.length - 1]!.trim();
    // dpkg before 1.17 has no db:Status-Status, but the same word ends its `Status` ("install ok installed").
    const status = rawStatus.split(/\s+/).pop() ?? '';
    const maintainer = maintainerName(fields.slice(2, -1).join('\t'));
    if (!/^[a-z0-9][a-z0-9+.-]*$/.test(name ?? '')) {
      skipped++;
      continue;
    }
    if (!INSTALLED_STATES.has(status)) continue;
    const p = program('dpkg', { name, version, publisher: maintainer });
    if (p) programs.push(p);
    else skipped++;
  }
  return { programs: distinct(programs), skipped };
}

/** What `rpm -qa --qf …` printed. `gpg-pubkey` entries are imported signing keys, not software; `(none)` is rpm's word for an empty tag. */
export function parseRpmQuery(stdout: string): ParsedList {
  const programs: InstalledProgram[] = [];
  let skipped = 0;
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.replace(/\r$/, '').split('\t');
    if (fields.length < 3) {
      skipped++;
      continue;
    }
    const [name, version] = fields;
    const vendor = fields.slice(2).join('\t').trim();
    if (!name || /\s/.test(name) || name.startsWith('-')) {
      skipped++;
      continue;
    }
    if (name === 'gpg-pubkey') continue;
    const p = program('rpm', { name, version: version === '(none)-(none)' ? undefined : version, publisher: vendor === '(none)' ? undefined : vendor });
    if (p) programs.push(p);
    else skipped++;
  }
  return { programs: distinct(programs), skipped };
}

type Lister = { source: 'dpkg' | 'rpm'; file: string; args: readonly string[]; parse: (stdout: string) => ParsedList; emptyIsSuspect: boolean };

const LISTERS: readonly Lister[] = [
  // A Debian system always has packages: an empty list is a broken database, not an empty computer.
  { source: 'dpkg', file: DPKG_QUERY, args: DPKG_QUERY_ARGS, parse: parseDpkgQuery, emptyIsSuspect: true },
  // rpm is often installed on Debian with an empty database of its own.
  { source: 'rpm', file: RPM, args: RPM_ARGS, parse: parseRpmQuery, emptyIsSuspect: false },
];

const isMissing = (e: unknown): boolean => e instanceof Error && /\bENOENT\b/.test(e.message);

export class LinuxPackageInventory implements InventorySource {
  constructor(private readonly runner: CommandRunner) {}

  async list(): Promise<InventorySnapshot> {
    const snapshots: InventorySnapshot[] = [];
    let present = 0;
    for (const lister of LISTERS) {
      let stdout: string;
      try {
        const result = await this.runner.run(lister.file, [...lister.args], LIST_TIMEOUT_MS);
        if (result.code !== 0) throw unreadable(`${lister.file} exited with ${result.code}`);
        stdout = result.stdout;
      } catch (e) {
        if (isMissing(e)) continue;
        present++;
        snapshots.push({ programs: [], sources: [], unread: [{ source: lister.source, code: 'INV_ERR_INVENTORY_UNREADABLE', message: reasonOf(e) }] });
        continue;
      }
      present++;
      snapshots.push(this.snapshotOf(lister, stdout));
    }
    if (present === 0) throw unreadable('neither dpkg-query nor rpm is installed');
    const merged = mergeSnapshots(snapshots);
    if (merged.sources.length === 0) throw unreadable(merged.unread.map((u) => `${u.source}: ${u.message}`).join('; '));
    return merged;
  }

  private snapshotOf(lister: Lister, stdout: string): InventorySnapshot {
    const { programs, skipped } = lister.parse(stdout);
    const fail = (message: string): InventorySnapshot => ({
      programs: [],
      sources: [],
      unread: [{ source: lister.source, code: 'INV_ERR_INVENTORY_UNREADABLE', message }],
    });
    if (programs.length === 0 && (skipped > 0 || lister.emptyIsSuspect))
      return fail(`${lister.file} listed no package it could read (${skipped} lines skipped)`);
    if (programs.length > MAX_PROGRAMS_PER_SOURCE) return fail(`${lister.file} listed ${programs.length} packages, more than ${MAX_PROGRAMS_PER_SOURCE}`);
    return { programs, sources: [lister.source], unread: [], ...(skipped > 0 ? { skipped } : {}) };
  }
}
