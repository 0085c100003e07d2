import { spawn } from 'node:child_process';
import type { FileHandle } from 'node:fs/promises';

/**
 * The last step of a restore, run in a short-lived child process with the
 * rights of the file's owner (on POSIX, when the agent is root: supplementary
 * groups, gid and uid dropped to theirs before anything else).
 *
 * Why a child: the agent runs as root, and the original path is in a folder
 * its user controls. Node has no `openat`/`linkat`, so a root process writing
 * there can be tricked by a folder swapped for a link between its checks and
 * its write into putting a user's file in `/etc/profile.d`. The child can only
 * write where the owner could have written themselves, so no swap gains
 * anything. It reads the quarantined bytes from its stdin, an open read-only
 * descriptor the agent passes (the quarantine folder itself stays closed to
 * it), writes them to a temporary name beside the target with `O_EXCL`,
 * checks their SHA-256, sets mode, group and mtime on its own descriptor,
 * then `link`s the temporary name to the target (which never replaces
 * anything: `EEXIST`) and removes the temporary name.
 *
 * On Windows there are no uids: the child runs with the agent's rights, and
 * the agent's own checks (no link or junction in the path) are what protect.
 */
const HELPER = String.raw`'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const p = JSON.parse(process.argv[1]);
const done = (r) => { process.stdout.write(JSON.stringify(r)); process.exit(0); };
if (p.uid !== undefined) {
  try {
    try { process.initgroups(p.uid, p.gid); } catch { process.setgroups([p.gid]); }
    process.setgid(p.gid);
    process.setuid(p.uid);
  } catch (e) { done({ ok: false, code: e.code || 'EPERM', step: 'drop' }); }
  if (process.getuid() !== p.uid || process.geteuid() !== p.uid) done({ ok: false, code: 'EPERM', step: 'drop' });
}
const dir = path.dirname(p.target);
const temp = path.join(dir, '.' + path.basename(p.target).slice(0, 80) + '.invigilator-restore-' + crypto.randomBytes(6).toString('hex'));
let fd;
let created = false;
let step = 'create';
try {
  fd = fs.openSync(temp, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | (fs.constants.O_NOFOLLOW || 0), 0o600);
  created = true;
  step = 'copy';
  const buf = Buffer.allocUnsafe(1 << 20);
  const zero = Buffer.alloc(1 << 20);
  let pos = 0;
  for (;;) {
    const n = fs.readSync(0, buf, 0, buf.length, pos);
    if (!n) break;
    const chunk = buf.subarray(0, n);
    if (!chunk.equals(zero.subarray(0, n))) {
      let w = 0;
      while (w < n) w += fs.writeSync(fd, chunk, w, n - w, pos + w);
    }
    pos += n;
  }
  fs.ftruncateSync(fd, pos);
  fs.fsyncSync(fd);
  step = 'verify';
  const hash = crypto.createHash('sha256');
  let q = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, q);
    if (!n) break;
    hash.update(buf.subarray(0, n));
    q += n;
  }
  if (q !== p.size || hash.digest('hex') !== p.sha256) throw Object.assign(new Error('verify'), { code: 'EVERIFY' });
  step = 'metadata';
  if (p.gid !== undefined) { try { fs.fchownSync(fd, -1, p.gid); } catch {} }
  fs.fchmodSync(fd, p.mode & 0o7777);
  fs.futimesSync(fd, new Date(), p.mtimeMs / 1000);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fd = undefined;
  step = 'place';
  try {
    fs.linkSync(temp, p.target);
    fs.unlinkSync(temp);
  } catch (e) {
    if (!['EPERM', 'ENOTSUP', 'ENOSYS', 'EOPNOTSUPP'].includes(e.code) || fs.existsSync(p.target)) throw e;
    fs.renameSync(temp, p.target);
  }
  created = false;
  try { const d = fs.openSync(dir, 'r'); fs.fsyncSync(d); fs.closeSync(d); } catch {}
  const st = fs.lstatSync(p.target, { bigint: true });
  done({ ok: true, identity: st.dev + ':' + st.ino });
} catch (e) {
  if (fd !== undefined) { try { fs.closeSync(fd); } catch {} }
  if (created) { try { fs.unlinkSync(temp); } catch {} }
  done({ ok: false, code: e.code || 'EIO', step });
}
`;

export interface RestoreRequest {
  /** The quarantined file, open for reading: becomes the child's stdin. */
  source: FileHandle;
  target: string;
  size: number;
  sha256: string;
  mode: number;
  mtimeMs: number;
  /** Drop to this user and group first (POSIX, when the agent is root and the file was someone else's). */
  asUser?: { uid: number; gid: number };
  /** Group to give the file, where the owner may. */
  gid?: number;
  timeoutMs: number;
}

export type RestoreResult = { ok: true; identity: string } | { ok: false; code: string; step: string };

/** Runs the helper; never throws. */
export function placeRestoredFile(request: RestoreRequest): Promise<RestoreResult> {
  const params = {
    target: request.target,
    size: request.size,
    sha256: request.sha256,
    mode: request.mode,
    mtimeMs: request.mtimeMs,
    ...(request.asUser ? { uid: request.asUser.uid, gid: request.asUser.gid } : request.gid !== undefined ? { gid: request.gid } : {}),
  };
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(process.execPath, ['-e', HELPER, JSON.stringify(params)], {
        stdio: [request.source.fd, 'pipe', 'pipe'],
        cwd: '/',
        // Nothing of the agent's environment (NODE_OPTIONS least of all); Windows needs SystemRoot.
        env: process.env.SystemRoot ? { SystemRoot: process.env.SystemRoot } : {},
        timeout: request.timeoutMs,
        killSignal: 'SIGKILL',
        windowsHide: true,
      });
    } catch (e) {
      resolve({ ok: false, code: (e as NodeJS.ErrnoException).code ?? 'ESPAWN', step: 'spawn' });
      return;
    }
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      if (out.length < 64 * 1024) out += d.toString('utf8');
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (err.length < 4096) err += d.toString('utf8');
    });
    child.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? 'ESPAWN', step: 'spawn' }));
    child.on('close', (code, signal) => {
      try {
        const parsed = JSON.parse(out) as RestoreResult;
        if (typeof parsed === 'object' && parsed !== null && typeof parsed.ok === 'boolean') {
          resolve(parsed);
          return;
        }
      } catch {
        // fall through
      }
      resolve({ ok: false, code: signal ? 'ETIMEDOUT' : `EXIT${code ?? ''}`, step: err.trim().slice(0, 200) || 'helper' });
    });
  });
}
