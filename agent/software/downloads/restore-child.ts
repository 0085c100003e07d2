import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  ftruncateSync,
  futimesSync,
  linkSync,
  lstatSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { parseRestoreParams, type RestoreParams, type RestoreResult } from './restore-protocol';

/**
 * The restore child: a program of its own, run by quarantine-restore.ts (which
 * says why a child) as `node restore-child.js '<request JSON>'` with the
 * quarantined bytes on stdin. It answers one JSON result on stdout, always
 * with exit status 0; every failure is `{ ok: false, code, step }`.
 *
 * It imports only `node:` modules and the protocol, so it starts fast.
 */

/** Link failures that mean "this file system has no hard links", not "something is there". */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'ENOSYS', 'EOPNOTSUPP']);
const CHUNK = 1 << 20;

/** Node has had `process.initgroups` on POSIX since 0.9; @types/node leaves it out. */
type WithInitgroups = NodeJS.Process & { initgroups?: (user: number | string, extraGroup: number | string) => void };

const codeOf = (e: unknown, fallback: string): string => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code.length > 0 ? code : fallback;
};

/**
 * Supplementary groups, gid, then uid: once uid is dropped the others cannot
 * be. Then checked, since a drop that silently did nothing would leave root
 * writing in a user's folder.
 */
function dropTo(uid: number, gid: number): RestoreResult | undefined {
  try {
    if (!process.setuid || !process.setgid || !process.getuid || !process.geteuid) throw Object.assign(new Error('no uids here'), { code: 'EPERM' });
    try {
      const self = process as WithInitgroups;
      if (!self.initgroups) throw new Error('no initgroups');
      self.initgroups(uid, gid);
    } catch {
      // No passwd entry for the uid (or no initgroups): the file's group alone.
      if (!process.setgroups) throw Object.assign(new Error('no setgroups'), { code: 'EPERM' });
      process.setgroups([gid]);
    }
    process.setgid(gid);
    process.setuid(uid);
  } catch (e) {
    return { ok: false, code: codeOf(e, 'EPERM'), step: 'drop' };
  }
  if (process.getuid() !== uid || process.geteuid() !== uid) return { ok: false, code: 'EPERM', step: 'drop' };
  return undefined;
}

/** Copies `from` to `to` from offset 0, skipping all-zero chunks so holes stay holes; the length written. */
function copySparse(from: number, to: number): number {
  const buf = Buffer.allocUnsafe(CHUNK);
  const zero = Buffer.alloc(CHUNK);
  let pos = 0;
  for (;;) {
    const n = readSync(from, buf, 0, buf.length, pos);
    if (!n) break;
    const chunk = buf.subarray(0, n);
    if (!chunk.equals(zero.subarray(0, n))) {
      let w = 0;
      while (w < n) w += writeSync(to, chunk, w, n - w, pos + w);
    }
    pos += n;
  }
  ftruncateSync(to, pos);
  return pos;
}

/** Size and SHA-256 of what is on the descriptor: what was written, read back. */
function hashOf(fd: number): { size: number; sha256: string } {
  const buf = Buffer.allocUnsafe(CHUNK);
  const hash = createHash('sha256');
  let pos = 0;
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, pos);
    if (!n) break;
    hash.update(buf.subarray(0, n));
    pos += n;
  }
  return { size: pos, sha256: hash.digest('hex') };
}

/** Writes the bytes on `source` to `p.target`, as whoever this process is by now. Never throws. */
function placeFile(p: RestoreParams, source: number): RestoreResult {
  const dir = dirname(p.target);
  const temp = join(dir, `.${basename(p.target).slice(0, 80)}.invigilator-restore-${randomBytes(6).toString('hex')}`);
  let fd: number | undefined;
  let created = false;
  let step = 'create';
  try {
    fd = openSync(temp, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o600);
    created = true;
    step = 'copy';
    copySparse(source, fd);
    fsyncSync(fd);
    step = 'verify';
    const written = hashOf(fd);
    if (written.size !== p.size || written.sha256 !== p.sha256) return fail('EVERIFY');
    step = 'metadata';
    if (p.gid !== undefined) {
      try {
        fchownSync(fd, -1, p.gid);
      } catch {
        // Not a group the owner is in: it keeps theirs.
      }
    }
    fchmodSync(fd, p.mode & 0o7777);
    futimesSync(fd, new Date(), p.mtimeMs / 1000);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    step = 'place';
    try {
      linkSync(temp, p.target);
      unlinkSync(temp);
    } catch (e) {
      if (!NO_HARD_LINKS.has(codeOf(e, '')) || existsSync(p.target)) throw e;
      renameSync(temp, p.target);
    }
    created = false;
    try {
      const d = openSync(dir, 'r');
      fsyncSync(d);
      closeSync(d);
    } catch {
      // Folders cannot be opened for sync on Windows; the file itself is synced.
    }
    const st = lstatSync(p.target, { bigint: true });
    return { ok: true, identity: `${st.dev}:${st.ino}` };
  } catch (e) {
    return fail(codeOf(e, 'EIO'));
  }

  function fail(code: string): RestoreResult {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // Closing is only tidiness here.
      }
    }
    if (created) {
      try {
        unlinkSync(temp);
      } catch {
        // Nothing more the child can do; the name is hidden and random.
      }
    }
    return { ok: false, code, step };
  }
}

/** The whole child: check the request, drop rights, place the file. */
function runRestoreChild(request: string | undefined, source: number): RestoreResult {
  const parsed = parseRestoreParams(request);
  if (!parsed.ok) return { ok: false, code: 'EINVAL', step: `input: ${parsed.reason}` };
  const p = parsed.params;
  if (!isAbsolute(p.target)) return { ok: false, code: 'EINVAL', step: 'input: target is not absolute' };
  if (p.uid !== undefined && p.gid !== undefined) {
    const refused = dropTo(p.uid, p.gid);
    if (refused) return refused;
  }
  return placeFile(p, source);
}

if (require.main === module) {
  // No process.exit: the answer goes down a pipe, and exiting could cut it short.
  process.stdout.write(JSON.stringify(runRestoreChild(process.argv[2], 0)));
}
