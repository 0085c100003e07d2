import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { InvigilatorError } from '../shared/errors';
import { SECRET_KEY_BYTES } from './store/device-secret-box';

/** Where the key device secrets are sealed under lives unless `--secret-key-file` says otherwise: beside the tokens, outside the database. */
export const SECRET_KEY_FILE = 'device-secret-key';

/**
 * The collector's device secret key (docs/deployment.md): 32 random bytes,
 * base64url on one line, in a file only its owner can read. Made on first
 * start when the file does not exist: written to a temporary name (0600 from
 * the first instant, whatever the umask) and linked into place, so two
 * collectors starting at once on one shared path end with one key, never a
 * half-written file. A key file anyone else can read or write is refused:
 * with it, a copy of the database is as good as the devices' identity files.
 */
export function loadSecretKey(path: string): { key: Buffer; created: boolean } {
  const existing = readKey(path);
  if (existing) return { key: existing, created: false };
  const key = randomBytes(SECRET_KEY_BYTES);
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  let fd: number;
  try {
    fd = openSync(temporary, 'wx', 0o600);
  } catch (e) {
    throw unreadable(path, e);
  }
  try {
    writeSync(fd, `${key.toString('base64url')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, path);
  } catch (e) {
    // Another collector made it first: use theirs.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw unreadable(path, e);
    const theirs = readKey(path);
    if (!theirs) throw invalid(path, 'vanished as it was made');
    return { key: theirs, created: false };
  } finally {
    unlinkSync(temporary);
  }
  return { key, created: true };
}

function readKey(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(path, e);
  }
  let text: string;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw invalid(path, 'not a regular file');
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      throw invalid(path, `mode ${(stat.mode & 0o777).toString(8)}: others can read or change it (chmod 600 it)`);
    }
    if (stat.size > 256) throw invalid(path, 'not a key file (too large)');
    text = readFileSync(fd, 'utf8').trim();
  } finally {
    closeSync(fd);
  }
  const key = /^[A-Za-z0-9_-]{43}$/.test(text) ? Buffer.from(text, 'base64url') : undefined;
  if (!key || key.length !== SECRET_KEY_BYTES) throw invalid(path, `not ${SECRET_KEY_BYTES} bytes in base64url on one line`);
  return key;
}

function invalid(path: string, why: string): InvigilatorError {
  return new InvigilatorError('INV_ERR_CONFIG_INVALID', `the device secret key file ${path}: ${why}`);
}

function unreadable(path: string, e: unknown): InvigilatorError {
  return new InvigilatorError('INV_ERR_FILE_UNREADABLE', `the device secret key file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
}
