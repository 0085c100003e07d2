import type { Platform } from '../../../shared/protocol/primitives';

/**
 * How names and paths compare. Names: case-insensitively, on the base name
 * without `.exe`, so a policy's `tor.exe` matches Linux's `tor` and Windows's
 * `TOR.EXE` alike. Paths: with `/` separators, case-insensitively on Windows
 * and macOS (NTFS and APFS as shipped), exactly on Linux.
 */

/** `C:\Tools\Tor.EXE` → `tor`; `/usr/bin/dumpcap` → `dumpcap`; a Linux exe link's ` (deleted)` is dropped. */
export function normaliseName(name: string): string {
  let base = name.replace(/ \(deleted\)$/, '');
  const slash = Math.max(base.lastIndexOf('/'), base.lastIndexOf('\\'));
  if (slash >= 0) base = base.slice(slash + 1);
  base = base.toLowerCase();
  return base.endsWith('.exe') ? base.slice(0, -4) : base;
}

/** Each OS's path conventions, as facts: whether its file systems ignore case, whether `\` separates folders. */
const PATH_CONVENTIONS: Readonly<Record<Platform, { foldsCase: boolean; backslashes: boolean }>> = {
  linux: { foldsCase: false, backslashes: false },
  darwin: { foldsCase: true, backslashes: false },
  win32: { foldsCase: true, backslashes: true },
};

export function caseInsensitivePaths(platform: Platform): boolean {
  return PATH_CONVENTIONS[platform].foldsCase;
}

/** A path as it is compared: `/` separators, a Linux ` (deleted)` suffix dropped, lower case where the file system ignores case. */
export function normalisePath(path: string, platform: Platform): string {
  let p = path.replace(/ \(deleted\)$/, '');
  if (PATH_CONVENTIONS[platform].backslashes) p = p.replace(/\\/g, '/');
  return caseInsensitivePaths(platform) ? p.toLowerCase() : p;
}

/** Whether a path has `.` or `..` segments: such a path was not resolved, and is never trusted to be where it says. */
export function hasDotSegments(normalisedPath: string): boolean {
  return /(^|\/)\.\.?(\/|$)/.test(normalisedPath);
}

/** The folder of a normalised path, with its trailing `/`. */
export function folderOf(normalisedPath: string): string {
  const slash = normalisedPath.lastIndexOf('/');
  return slash >= 0 ? normalisedPath.slice(0, slash + 1) : '';
}

const globCache = new Map<string, RegExp>();
const GLOB_CACHE_MAX = 2000;

/**
 * A policy's `pathPattern` as a regular expression over a normalised path:
 * `**` crosses folders, `*` and `?` stay within one. Backslashes in a Windows
 * pattern are separators, as they are in the paths.
 */
export function globToRegExp(pattern: string, platform: Platform): RegExp {
  const key = `${platform}\0${pattern}`;
  const cached = globCache.get(key);
  if (cached) return cached;
  const p = normalisePath(pattern, platform);
  let source = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (p[i + 1] === '*') {
        // `**/` matches no folder as well as several.
        if (p[i + 2] === '/') {
          source += '(?:.*/)?';
          i += 2;
        } else {
          source += '.*';
          i += 1;
        }
      } else source += '[^/]*';
    } else if (c === '?') source += '[^/]';
    else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  const re = new RegExp(`^${source}$`, 's');
  if (globCache.size >= GLOB_CACHE_MAX) globCache.clear();
  globCache.set(key, re);
  return re;
}

/** A `softwareMatch` from the policy (rules and `approved`). */
export interface SoftwareMatchFields {
  name?: string | undefined;
  pathPattern?: string | undefined;
  sha256?: string | undefined;
  signer?: string | undefined;
}

/** What a match can be compared against: the process's own facts, normalised once. */
export interface MatchSubject {
  /** Normalised names the process is known by: its executable's, then (Linux) its comm. */
  names: readonly string[];
  /** The normalised executable name only: what approvals trust. */
  exeName: string;
  path?: string | undefined;
  sha256?: string | undefined;
  signer?: string | undefined;
}

/** How specific a match is: a hash names one file, a signer one publisher, a path one place, a name anything so named. */
export const MATCH_STRENGTH = { sha256: 4, signer: 3, path: 2, name: 1 } as const;
export type MatchKind = keyof typeof MATCH_STRENGTH;

/** The strongest field a match names. */
export function strongestField(m: SoftwareMatchFields): MatchKind {
  if (m.sha256 !== undefined) return 'sha256';
  if (m.signer !== undefined) return 'signer';
  if (m.pathPattern !== undefined) return 'path';
  return 'name';
}

/**
 * Whether every field the match names holds for the process. A field whose
 * fact is unknown (no hash: the file could not be read; no signer) does not
 * hold: a match is never assumed. `names` decides which of the process's
 * names count: denylist rules use every name the OS reported, approvals only
 * the executable's own (a process can rename its comm, not its executable).
 */
export function matches(m: SoftwareMatchFields, subject: MatchSubject, platform: Platform, names: 'all' | 'exe'): boolean {
  if (m.name !== undefined) {
    const wanted = normaliseName(m.name);
    if (names === 'exe' ? subject.exeName !== wanted : !subject.names.includes(wanted)) return false;
  }
  if (m.pathPattern !== undefined) {
    if (subject.path === undefined || hasDotSegments(subject.path)) return false;
    if (!globToRegExp(m.pathPattern, platform).test(subject.path)) return false;
  }
  if (m.sha256 !== undefined && (subject.sha256 === undefined || subject.sha256 !== m.sha256.toLowerCase())) return false;
  if (m.signer !== undefined && (subject.signer === undefined || subject.signer.toLowerCase() !== m.signer.toLowerCase())) return false;
  return true;
}
