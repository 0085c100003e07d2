import { posix, win32 } from 'node:path';
import type { Platform } from '../../../shared/protocol/primitives';

/**
 * Which folders the file watch looks at: the places the computer's users
 * save to and install into. Computed from facts the caller gathers (the
 * signed-in users' home folders, the service's environment), so every OS's
 * list is tested on any OS.
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
  platform: Platform;
  /** The users signed in now, one entry per user (not per session). */
  users: readonly SignedInUser[];
  /** The agent service's own environment. */
  env: Readonly<Record<string, string | undefined>>;
}

/** Most folders watched at once, whatever the facts say. */
export const MAX_WATCHED_FOLDERS = 400;

function pathsFor(platform: Platform) {
  return platform === 'win32' ? win32 : posix;
}

/** Whether `child` is `parent` or inside it, on that platform's rules (case-insensitive on Windows and macOS). */
export function isInside(platform: Platform, parent: string, child: string): boolean {
  const p = pathsFor(platform);
  const fold = (s: string) => (platform === 'linux' ? s : s.toLowerCase());
  const rel = p.relative(fold(p.resolve(parent)), fold(p.resolve(child)));
  return rel === '' || (!rel.startsWith('..') && !p.isAbsolute(rel));
}

/** The folder list for these facts: per-user folders first, then the shared ones, without duplicates. */
export function watchedFolders(facts: FolderFacts): WatchedFolder[] {
  const p = pathsFor(facts.platform);
  const out: WatchedFolder[] = [];
  const seen = new Set<string>();
  const add = (folder: WatchedFolder) => {
    if (!folder.path || !p.isAbsolute(folder.path) || folder.path.includes('\0')) return;
    const path = p.resolve(folder.path);
    const key = facts.platform === 'linux' ? path : path.toLowerCase();
    if (seen.has(key) || out.length >= MAX_WATCHED_FOLDERS) return;
    seen.add(key);
    out.push({ ...folder, path });
  };
  const within = (home: string, candidate: string | undefined, fallback: string) =>
    candidate && p.isAbsolute(candidate) && isInside(facts.platform, home, candidate) ? candidate : fallback;

  for (const user of facts.users) {
    if (!p.isAbsolute(user.home)) continue;
    const home = p.resolve(user.home);
    const mine = (path: string, depth: number, purpose: FolderPurpose) => add({ path, depth, purpose, owner: user.uid, confineTo: home });
    mine(within(home, user.downloads, p.join(home, 'Downloads')), 3, 'downloads');
    mine(within(home, user.desktop, p.join(home, 'Desktop')), 3, 'desktop');
    if (facts.platform === 'linux') {
      mine(p.join(home, '.local', 'bin'), 0, 'user-programs');
    } else if (facts.platform === 'darwin') {
      mine(p.join(home, 'Applications'), 0, 'user-programs');
    } else {
      const local = within(home, user.localAppData, p.join(home, 'AppData', 'Local'));
      mine(within(home, user.temp, p.join(local, 'Temp')), 1, 'temp');
      mine(p.join(local, 'Programs'), 2, 'user-programs');
    }
  }

  switch (facts.platform) {
    case 'linux':
      add({ path: '/tmp', depth: 1, purpose: 'temp' });
      add({ path: '/var/tmp', depth: 1, purpose: 'temp' });
      add({ path: '/opt', depth: 2, purpose: 'programs' });
      add({ path: '/usr/local/bin', depth: 0, purpose: 'programs' });
      break;
    case 'darwin':
      add({ path: '/Applications', depth: 0, purpose: 'programs' });
      // `/tmp` is a link to `/private/tmp`; the watch does not follow links at the top of a shared folder.
      add({ path: '/private/tmp', depth: 1, purpose: 'temp' });
      break;
    case 'win32': {
      const env = facts.env;
      const drive = env.SystemDrive && /^[A-Za-z]:$/.test(env.SystemDrive) ? env.SystemDrive : 'C:';
      const temp = env.TEMP ?? env.TMP;
      if (temp) add({ path: temp, depth: 1, purpose: 'temp' });
      add({ path: env.ProgramFiles ?? `${drive}\\Program Files`, depth: 2, purpose: 'programs' });
      add({ path: env['ProgramFiles(x86)'] ?? `${drive}\\Program Files (x86)`, depth: 2, purpose: 'programs' });
      break;
    }
  }
  return out;
}

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
    if (path === posix.resolve(home) || !isInside('linux', home, path)) continue;
    if (m[1] === 'DOWNLOAD') out.downloads = path;
    else out.desktop = path;
  }
  return out;
}
