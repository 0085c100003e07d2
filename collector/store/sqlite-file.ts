import { chmodSync, closeSync, constants, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { InvigilatorError } from '../../shared/errors';

const DB_SETTING = '--db sqlite:PATH (INVIGILATOR_DB)';

/**
 * Gets a SQLite database file ready before SQLite opens it: its folder made
 * 0700 if missing, the file itself created 0600 (or tightened to owner-only)
 * whatever the umask. SQLite gives the `-wal` and `-shm` files it creates the
 * database file's mode, so they are 0600 too; ones left by an older version
 * are tightened here. A path that cannot work is a coded error saying what to
 * do, never a stack trace.
 */
export function prepareSqliteFile(path: string, posix: boolean): void {
  const folder = dirname(path);
  try {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw unusable(path, e as NodeJS.ErrnoException);
  }
  if (!statSync(folder).isDirectory()) throw unusable(path, Object.assign(new Error('not a folder'), { code: 'ENOTDIR' }));
  try {
    // O_APPEND|O_CREAT: creates an empty file (SQLite makes a new database in it) and changes nothing in an existing one.
    closeSync(openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND, 0o600));
  } catch (e) {
    throw unusable(path, e as NodeJS.ErrnoException);
  }
  if (!posix) return;
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch {
      continue;
    }
    if (mode & 0o077) chmodSync(file, mode & 0o700);
  }
}

function unusable(path: string, e: NodeJS.ErrnoException): InvigilatorError {
  if (e.code === 'ENOTDIR' || e.code === 'EEXIST') {
    return new InvigilatorError(
      'INV_ERR_STORE_UNWRITABLE',
      `${blockingFile(dirname(path))} is a file, not a folder, so the database ${path} cannot be made: move the file away, or choose another path with ${DB_SETTING}.`,
    );
  }
  if (e.code === 'EISDIR') {
    return new InvigilatorError('INV_ERR_STORE_UNWRITABLE', `${path} is a folder: give the path of the database file inside it with ${DB_SETTING}.`);
  }
  return new InvigilatorError(
    'INV_ERR_STORE_UNWRITABLE',
    `the database ${path} cannot be created or written by uid ${process.geteuid?.() ?? '?'} (${e.code ?? e.message}): ` +
      `let this user write the file and its folder, or choose another path with ${DB_SETTING}.`,
  );
}

/** The first part of the path that exists and is not a folder. */
function blockingFile(folder: string): string {
  const parts: string[] = [];
  for (let p = folder, hops = 0; hops < 256 && dirname(p) !== p; p = dirname(p), hops++) parts.unshift(p);
  for (const p of parts) {
    try {
      if (!statSync(p).isDirectory()) return p;
    } catch {
      return folder;
    }
  }
  return folder;
}

/** What SQLite's own errors mean to the person running the collector. */
export function sqliteOpenError(path: string, e: unknown): InvigilatorError | undefined {
  const code = (e as { code?: unknown }).code;
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || (typeof code === 'string' && code.startsWith('SQLITE_CORRUPT'))) {
    return new InvigilatorError(
      'INV_ERR_STORE_CORRUPT',
      `${path} is not a SQLite database or is damaged (${String(code)}); it was left as it is. ` +
        `Restore it from a backup, or move it away to start with an empty database (devices must then enroll again), or choose another path with ${DB_SETTING}.`,
    );
  }
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || (typeof code === 'string' && code.startsWith('SQLITE_READONLY'))) {
    return new InvigilatorError(
      'INV_ERR_STORE_UNWRITABLE',
      `the database ${path} cannot be opened for writing (${code}): let uid ${process.geteuid?.() ?? '?'} write the file and its folder, or choose another path with ${DB_SETTING}.`,
    );
  }
  return undefined;
}
