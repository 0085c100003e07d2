import { posix } from 'node:path';
import type { DownloadsOs, PathRules } from './downloads-os';

/**
 * Which folders the file watch looks at: the places the computer's users
 * save to and install into. Computed from facts the caller gathers (the
 * signed-in users' home folders, the service's environment) and the OS's
 * own places (`DownloadsOs`, linux/ darwin/ win32/), so every OS's list is
 * tested on any OS.
 *
 * Depth follows chokidar: 0 is the folder's own entries, 1 one folder down,
 * and so on. Downloads and the desktop get 3 (a zip unpacked into a folder of
 * its own, with a `bin/` inside); temporary folders 1 (they are busy); folders
 * of programs 0 to 2. Every file within the depth costs the OS a watch, so
 * the whole of `C:\Program Files` is not watched, only its first two levels.
 */

export type FolderPurpose = 'downloads' | 'desktop' | 'temp' | 'user-programs' | 'programs';

export interface WatchedFolder {
  path: string;
  depth: number;
  purpose: FolderPurpose;
  /**
   * The user whose folder this is (their uid; on Windows their session
   * number). On Windows, where files carry no uid the agent can read, this
   * is how a file is attributed to a person; shared folders have none.
   */
  owner?: number;
  /**
   * A per-user folder that is a link is followed only to somewhere inside
   * this folder (the user's home): a pupil who points `~/Downloads` at `/`
   * must not make the agent watch the whole disk.
   */
  confineTo?: string;
}

export interface SignedInUser {
  uid: number;
  home: string;
  /** Where this user's downloads go, when not `<home>/Downloads` (XDG user dirs, a Windows known folder). Must be inside `home`. */
  downloads?: string;
  desktop?: string;
  /** Windows: this user's `%LOCALAPPDATA%`; `<home>\AppData\Local` when absent. */
  localAppData?: string;
  /** Windows: this user's `%TEMP%`; `<localAppData>\Temp` when absent. */
  temp?: string;
}

export interface FolderFacts {
  /** The OS's folders and path rules, chosen by the composition root. */
  os: DownloadsOs;
  /** The users signed in now, one entry per user (not per session). */
  users: readonly SignedInUser[];
  /** The agent service's own environment. */
  env: Readonly<Record<string, string | undefined>>;
}

/** Most folders watched at once, whatever the facts say. */
export const MAX_WATCHED_FOLDERS = 400;

/** Whether `child` is `parent` or inside it, on these path rules (case-insensitive on Windows and macOS). */
export function isInside(rules: PathRules, parent: string, child: string): boolean {
  const p = rules.path;
  const fold = (s: string) => (rules.foldsCase ? s.toLowerCase() : s);
  const rel = p.relative(fold(p.resolve(parent)), fold(p.resolve(child)));
  return rel === '' || (!rel.startsWith('..') && !p.isAbsolute(rel));
}

/** The folder list for these facts: per-user folders first, then the shared ones, without duplicates. */
export function watchedFolders(facts: FolderFacts): WatchedFolder[] {
  const rules = facts.os.paths;
  const p = rules.path;
  const out: WatchedFolder[] = [];
  const seen = new Set<string>();
  const add = (folder: WatchedFolder) => {
    if (!folder.path || !p.isAbsolute(folder.path) || folder.path.includes('\0')) return;
    const path = p.resolve(folder.path);
    const key = rules.foldsCase ? path.toLowerCase() : path;
    if (seen.has(key) || out.length >= MAX_WATCHED_FOLDERS) return;
    seen.add(key);
    out.push({ ...folder, path });
  };

  for (const user of facts.users) {
    if (!p.isAbsolute(user.home)) continue;
    const home = p.resolve(user.home);
    const within = (candidate: string | undefined, fallback: string) =>
      candidate && p.isAbsolute(candidate) && isInside(rules, home, candidate) ? candidate : fallback;
    const mine = (path: string, depth: number, purpose: FolderPurpose) => add({ path, depth, purpose, owner: user.uid, confineTo: home });
    mine(within(user.downloads, p.join(home, 'Downloads')), 3, 'downloads');
    mine(within(user.desktop, p.join(home, 'Desktop')), 3, 'desktop');
    for (const f of facts.os.userFolders(user, home, within)) mine(f.path, f.depth, f.purpose);
  }
  for (const f of facts.os.sharedFolders(facts.env)) add(f);
  return out;
}

/** XDG user dirs are Linux's: its paths, case-sensitive. */
const XDG_PATHS: PathRules = { path: posix, foldsCase: false };

/**
 * A user's `~/.config/user-dirs.dirs` (XDG): where their downloads and
 * desktop are when not the English defaults (`Téléchargements`, `Bureau`).
 * The file is the user's to write, so a folder outside their home is ignored.
 */
export function parseXdgUserDirs(text: string, home: string): { downloads?: string; desktop?: string } {
  const out: { downloads?: string; desktop?: string } = {};
  const lines = text
    .slice(0, 64 * 1024)
    .split('\n')
    .slice(0, 200);
  for (const line of lines) {
    const m = /^\s*XDG_(DOWNLOAD|DESKTOP)_DIR\s*=\s*"([^"]*)"\s*$/.exec(line);
    if (!m) continue;
    const raw = m[2]!.startsWith('$HOME/') ? posix.join(home, m[2]!.slice(6)) : m[2]!;
    if (!posix.isAbsolute(raw)) continue;
    const path = posix.resolve(raw);
    if (path === posix.resolve(home) || !isInside(XDG_PATHS, home, path)) continue;
    if (m[1] === 'DOWNLOAD') out.downloads = path;
    else out.desktop = path;
  }
  return out;
}
