import { asList } from '../../../os/win32/ps-text';
import type { PowerShellSession } from '../../../os/win32/powershell-session';
import { psQuote } from '../../../os/win32/ps-text';
import {
  type InstalledProgram,
  type InventorySnapshot,
  type InventorySource,
  type UnreadSource,
  MAX_PROGRAMS_PER_SOURCE,
  distinct,
  inventoryText,
  program,
  reasonOf,
  unreadable,
} from '../inventory-source';

/**
 * Windows: what Settings' "Installed apps" and Control Panel's "Programs and
 * Features" list, read from the uninstall registry keys
 * (learn.microsoft.com/windows/win32/msi/uninstall-registry-key):
 *
 * - `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall` (source `registry:hklm`),
 * - its 32-bit twin under `WOW6432Node` (`registry:hklm-wow6432node`),
 * - each loaded user hive's `HKU\<sid>\Software\…\Uninstall` (`registry:hku:<sid>`):
 *   per-user installs, which any user can write without being an administrator.
 *
 * One script per key, through the agent's long-lived PowerShell session, so a
 * user who fills their own key with junk (too many entries, huge values)
 * makes only that key unreadable. A user's hive is loaded only while they are
 * signed in (or a service runs as them), so a hive that is not there is not
 * read at all: what it held before is kept, and signing out is not
 * uninstalling.
 *
 * Entries are skipped as Programs and Features skips them: no DisplayName,
 * `SystemComponent` 1 (what the MSI property ARPSYSTEMCOMPONENT writes, "prevents
 * the application from being displayed in the Add or Remove Programs list"),
 * a `ParentKeyName` (an update of another entry), or a `ReleaseType` of an
 * update, hotfix, security update or service pack.
 */
export const UNINSTALL_SUBKEY = 'Microsoft\\Windows\\CurrentVersion\\Uninstall';
export const MACHINE_KEYS: ReadonlyArray<{ source: string; path: string }> = [
  { source: 'registry:hklm', path: `HKLM:\\SOFTWARE\\${UNINSTALL_SUBKEY}` },
  { source: 'registry:hklm-wow6432node', path: `HKLM:\\SOFTWARE\\WOW6432Node\\${UNINSTALL_SUBKEY}` },
];

/** Accounts of people: local and domain users (S-1-5-21-…) and Entra ID users (S-1-12-1-…). Not services, not `_Classes` hives. */
const USER_SID = /^S-1-(?:5-21|12-1)(?:-[0-9]{1,10}){1,14}$/;
const MAX_USERS = 200;
/** Each value is cut to this many characters by the script itself, so one huge value cannot flood the session. */
const MAX_VALUE_CHARS = 1024;
const SCRIPT_TIMEOUT_MS = 60_000;
const HIDDEN_RELEASE_TYPES = new Set(['update', 'hotfix', 'security update', 'service pack']);

export function isUserSid(value: string): boolean {
  return USER_SID.test(value);
}

export function userKey(sid: string): { source: string; path: string } {
  return { source: `registry:hku:${sid}`, path: `Registry::HKEY_USERS\\${sid}\\Software\\${UNINSTALL_SUBKEY}` };
}

export const USERS_SCRIPT = `# invigilator:inventory-users
$sids = @(Get-ChildItem -LiteralPath 'Registry::HKEY_USERS' -ErrorAction Stop | ForEach-Object { $_.PSChildName } | Where-Object { $_ -match '^S-1-(5-21|12-1)(-[0-9]{1,10}){1,14}$' })
ConvertTo-Json -Compress -InputObject @($sids)`;

/**
 * Reads one uninstall key: `{"exists":false}` when it is not there, `tooMany`
 * when it has more subkeys than `max` (nothing else is printed), else every
 * subkey's name and the values we use, each cut to MAX_VALUE_CHARS; a value of
 * another type than text or a number (REG_BINARY, REG_MULTI_SZ) prints as null.
 */
export function readKeyScript(path: string, max = MAX_PROGRAMS_PER_SOURCE): string {
  return `# invigilator:inventory-read
$path = ${psQuote(path)}
$max = ${Math.floor(max)}
function Get-Text($v) {
  if ($v -is [string]) { if ($v.Length -gt ${MAX_VALUE_CHARS}) { return $v.Substring(0, ${MAX_VALUE_CHARS}) }; return $v }
  if ($v -is [int] -or $v -is [long]) { return [string]$v }
  return $null
}
if (-not (Test-Path -LiteralPath $path)) { return '{"exists":false,"entries":[]}' }
$keys = @(Get-ChildItem -LiteralPath $path -ErrorAction Stop)
if ($keys.Count -gt $max) { return (ConvertTo-Json -Compress -InputObject ([pscustomobject]@{ exists = $true; tooMany = $keys.Count; entries = @() })) }
$entries = foreach ($k in $keys) {
  $p = Get-ItemProperty -LiteralPath $k.PSPath -ErrorAction Stop
  [pscustomobject][ordered]@{
    key = Get-Text $k.PSChildName; DisplayName = Get-Text $p.DisplayName; DisplayVersion = Get-Text $p.DisplayVersion; Publisher = Get-Text $p.Publisher
    SystemComponent = Get-Text $p.SystemComponent; ParentKeyName = Get-Text $p.ParentKeyName; ReleaseType = Get-Text $p.ReleaseType
  }
}
ConvertTo-Json -Depth 3 -Compress -InputObject ([pscustomobject]@{ exists = $true; entries = @($entries) })`;
}

/** Which inventory script this is (the recorded session answers by it): `users`, `read`, or undefined. */
export function inventoryScriptKind(script: string): 'users' | 'read' | undefined {
  const m = /^# invigilator:inventory-(users|read)$/m.exec(script);
  return m ? (m[1] as 'users' | 'read') : undefined;
}

/** The registry path a read script reads, as quoted into it. */
export function inventoryScriptPath(script: string): string | undefined {
  const m = /^\$path = '((?:[^']|'')*)'$/m.exec(script);
  return m ? m[1]!.replace(/''/g, "'") : undefined;
}

const MAX_OUTPUT_CHARS = 8 * 1024 * 1024;

function parseJson(output: string, what: string): unknown {
  const trimmed = output.replace(/^\uFEFF/, '').trim();
  if (trimmed === '') return null;
  if (trimmed.length > MAX_OUTPUT_CHARS) throw unreadable(`${what}: output too large`);
  try {
    // Plain JSON.parse, not the strict boundary reader: a user's value holding a lone surrogate must cost that value, not the listing.
    return JSON.parse(trimmed) as unknown;
  } catch {
    throw unreadable(`${what}: not JSON`);
  }
}

/** The users script's answer: the SIDs of loaded user hives, each checked again here before it goes into a script. */
export function parseUsers(output: string): string[] {
  const value = parseJson(output, 'the list of user hives');
  const sids = asList(value).filter((v): v is string => typeof v === 'string' && isUserSid(v));
  return [...new Set(sids)].slice(0, MAX_USERS);
}

export interface ParsedKey {
  exists: boolean;
  programs: InstalledProgram[];
  skipped: number;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);

/** A read script's answer for `source`: the entries Programs and Features would show; throws INV_ERR_INVENTORY_UNREADABLE. */
export function parseKey(output: string, source: string): ParsedKey {
  const value = parseJson(output, source);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw unreadable(`${source}: unexpected output`);
  const answer = value as { exists?: unknown; tooMany?: unknown; entries?: unknown };
  if (answer.exists === false) return { exists: false, programs: [], skipped: 0 };
  if (answer.exists !== true) throw unreadable(`${source}: unexpected output`);
  if (answer.tooMany !== undefined) throw unreadable(`${source}: ${String(text(answer.tooMany) ?? '?')} entries, more than ${MAX_PROGRAMS_PER_SOURCE}`);
  const programs: InstalledProgram[] = [];
  let skipped = 0;
  for (const raw of asList(answer.entries)) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      skipped++;
      continue;
    }
    const e = raw as Record<string, unknown>;
    if ((text(e.DisplayName) ?? '').trim() === '') continue;
    if (text(e.SystemComponent)?.trim() === '1') continue;
    if (inventoryText(e.ParentKeyName)) continue;
    if (HIDDEN_RELEASE_TYPES.has((text(e.ReleaseType) ?? '').trim().toLowerCase())) continue;
    const p = program(source, { name: e.DisplayName, version: e.DisplayVersion, publisher: e.Publisher });
    if (p) programs.push(p);
    else skipped++;
  }
  if (programs.length > MAX_PROGRAMS_PER_SOURCE) throw unreadable(`${source}: more than ${MAX_PROGRAMS_PER_SOURCE} programs`);
  return { exists: true, programs: distinct(programs), skipped };
}

/**
 * The Windows reader. `session` is the agent's PowerShell session (shared
 * with the USB adapter: scripts run one at a time, and a full read takes a
 * second or two every fifteen minutes).
 */
export class RegistryInventory implements InventorySource {
  constructor(private readonly session: PowerShellSession) {}

  async list(): Promise<InventorySnapshot> {
    const keys = [...MACHINE_KEYS];
    const unread: UnreadSource[] = [];
    try {
      for (const sid of parseUsers(await this.session.run(USERS_SCRIPT, SCRIPT_TIMEOUT_MS))) keys.push(userKey(sid));
    } catch (e) {
      unread.push({ source: 'registry:hku', code: 'INV_ERR_INVENTORY_UNREADABLE', message: reasonOf(e) });
    }
    const programs: InstalledProgram[] = [];
    const sources: string[] = [];
    let skipped = 0;
    for (const key of keys) {
      try {
        const parsed = parseKey(await this.session.run(readKeyScript(key.path), SCRIPT_TIMEOUT_MS), key.source);
        programs.push(...parsed.programs);
        sources.push(key.source);
        skipped += parsed.skipped;
      } catch (e) {
        unread.push({ source: key.source, code: 'INV_ERR_INVENTORY_UNREADABLE', message: reasonOf(e) });
      }
    }
    if (sources.length === 0) throw unreadable(unread.map((u) => `${u.source}: ${u.message}`).join('; '));
    return { programs: distinct(programs), sources, unread, skipped };
  }
}
