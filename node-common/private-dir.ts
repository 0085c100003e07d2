import { accessSync, chmodSync, constants, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { InvigilatorError } from '../shared/errors';

export interface PrivateDirOptions {
  /** POSIX owners and modes apply; on Windows the installer's ACL protects the folder instead. */
  posix: boolean;
  /** How the operator chooses this folder, for the sentence saying what to do: `--data-dir (INVIGILATOR_DATA_DIR)`. */
  setting: string;
}

/** At most this many entries are looked at when tightening what an older version left; a data folder holds far fewer. */
const MAX_ENTRIES = 10_000;
const MAX_DEPTH = 4;

/**
 * Makes sure a service's data folder exists, is a folder, is writable, and is
 * private: created 0700 whatever the umask, because it holds the device
 * secret, the API token or the database of pupils' events. One made
 * beforehand with looser modes, empty or holding Invigilator's own files (an
 * older version's), is tightened with everything in it (group and other bits
 * removed). Refused: one owned by another user or a shared folder with the
 * sticky bit (such as /tmp), whose owner could read or replace what is kept
 * there, and a loose folder holding other programs' files. Returns what was
 * tightened, for the log.
 */
export function preparePrivateDir(path: string, options: PrivateDirOptions): string[] {
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw creationError(path, e as NodeJS.ErrnoException, options.setting);
  }
  const stat = statSync(path);
  if (!stat.isDirectory()) throw notAFolder(path, path, options.setting);
  try {
    accessSync(path, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw unwritable(path, path, (e as NodeJS.ErrnoException).code, options.setting);
  }
  if (!options.posix) return [];

  const uid = process.geteuid?.() ?? stat.uid;
  if (stat.uid !== uid) {
    throw new InvigilatorError(
      'INV_ERR_DATA_DIR_UNSAFE',
      `${path} belongs to uid ${stat.uid}, not to ${who()} that this runs as, and whoever owns it can read and replace what is kept there. ` +
        `Give it to this user (chown ${uid} ${path}), remove it so that it is made afresh, or choose another folder with ${options.setting}.`,
    );
  }
  if (stat.mode & 0o1000) {
    throw new InvigilatorError(
      'INV_ERR_DATA_DIR_UNSAFE',
      `${path} is a shared folder (its sticky bit is set, as on /tmp): choose a folder of its own with ${options.setting}.`,
    );
  }
  // Only a folder that is Invigilator's is tightened with what is in it: pointed by mistake at /var/lib or a home
  // folder, changing other programs' modes would break them, so a loose folder of someone else's is refused.
  const names = readdirSync(path);
  const ours = names.length === 0 || names.some((name) => OWN_FILES.has(name));
  if (!ours) {
    if (stat.mode & 0o077) {
      throw new InvigilatorError(
        'INV_ERR_DATA_DIR_UNSAFE',
        `${path} can be read by other users (mode ${(stat.mode & 0o7777).toString(8).padStart(4, '0')}) and holds files that are not Invigilator's: ` +
          `choose an empty folder of its own with ${options.setting}, or, if the folder is meant for Invigilator, make it private (chmod 0700 ${path}).`,
      );
    }
    return [];
  }
  try {
    return tighten(path);
  } catch (e) {
    throw unwritable(path, path, (e as NodeJS.ErrnoException).code, options.setting);
  }
}

/** Names only Invigilator's data folders hold (agent or collector, any version): what makes a folder ours to tighten. */
const OWN_FILES = new Set([
  'identity.json',
  'installation-id',
  'outbox',
  'policy.json',
  'admin-token',
  'enrollment-token',
  'collector.db',
  'agent',
  'device-secret-key',
]);

/**
 * Files at the top of the folder that are left as found: their reader refuses
 * them when others can read or change them (collector/secret-key-file.ts). No
 * version wrote them loose, so a loose one was loosened since, and the
 * operator is told rather than the mode quietly repaired.
 */
const REFUSED_WHEN_LOOSE = new Set(['device-secret-key']);

/** Removes group and other bits from the folder and what is in it, without following links. */
function tighten(root: string): string[] {
  const changed: string[] = [];
  const queue: Array<[string, number]> = [[root, 0]];
  let seen = 0;
  while (queue.length > 0 && seen < MAX_ENTRIES) {
    const [path, depth] = queue.shift()!;
    seen++;
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) continue;
    if (depth === 1 && REFUSED_WHEN_LOOSE.has(basename(path))) continue;
    if (stat.mode & 0o077) {
      chmodSync(path, stat.mode & 0o7700 & ~0o1000);
      changed.push(`${path} (was ${(stat.mode & 0o7777).toString(8).padStart(4, '0')})`);
    }
    if (stat.isDirectory() && depth < MAX_DEPTH) for (const name of readdirSync(path)) queue.push([join(path, name), depth + 1]);
  }
  return changed;
}

function who(): string {
  const uid = process.geteuid?.();
  try {
    return `${userInfo().username} (uid ${uid})`;
  } catch {
    return `uid ${uid}`;
  }
}

/** The nearest part of the path that exists. */
function existingAncestor(path: string): string {
  for (let p = path, hops = 0; hops < 256; p = dirname(p), hops++) {
    try {
      lstatSync(p);
      return p;
    } catch {
      if (dirname(p) === p) return p;
    }
  }
  return path;
}

function creationError(path: string, e: NodeJS.ErrnoException, setting: string): InvigilatorError {
  const found = existingAncestor(path);
  if (e.code === 'ENOTDIR' || e.code === 'EEXIST') return notAFolder(path, found, setting);
  return unwritable(path, found, e.code, setting);
}

function notAFolder(path: string, blocker: string, setting: string): InvigilatorError {
  return new InvigilatorError(
    'INV_ERR_DATA_DIR_NOT_A_FOLDER',
    `${blocker} is a file, not a folder, so ${path} cannot be a folder: move the file away, or choose another folder with ${setting}.`,
  );
}

function unwritable(path: string, where: string, code: string | undefined, setting: string): InvigilatorError {
  const cause = where === path ? `${path} is not writable by ${who()}` : `${path} cannot be created: ${where} is not writable by ${who()}`;
  return new InvigilatorError(
    'INV_ERR_DATA_DIR_UNWRITABLE',
    `${cause} (${code ?? 'error'}). Run as a user who may write there, make the folder beforehand for this user ` +
      `(mkdir -m 0700 ${path} && chown ${process.geteuid?.() ?? ''} ${path}), or choose another folder with ${setting}.`,
  );
}
