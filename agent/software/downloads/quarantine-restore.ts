import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, extname, join, relative } from 'node:path';
import { parseRestoreResult, type RestoreParams, type RestoreResult } from './restore-protocol';

export type { RestoreResult } from './restore-protocol';

/**
 * The last step of a restore, run in a short-lived child process (its own
 * program, restore-child.ts) with the rights of the file's owner (on POSIX,
 * when the agent is root: supplementary groups, gid and uid dropped to theirs
 * before anything else).
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
 *
 * Protocol: the request is one JSON argument (restore-protocol.ts), the
 * bytes come on stdin, and the answer is one JSON result on stdout. The child
 * checks the request and answers a coded failure for anything malformed.
 */

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

let childPath: string | undefined;

/**
 * The child's program, found from this module's own place: restore-child.js
 * beside it in a build. Loaded from the TypeScript sources (ts-jest
 * transpiles in memory, and Node cannot run a .ts file) it is the build's
 * copy under dist/, so tests that restore need `npm run build` first, as the
 * process tests do.
 */
export function restoreChildPath(): string {
  if (childPath !== undefined) return childPath;
  const here = dirname(__filename);
  if (extname(__filename) !== '.ts') return (childPath = join(here, 'restore-child.js'));
  let root = here;
  while (!existsSync(join(root, 'package.json')) && dirname(root) !== root) root = dirname(root);
  return (childPath = join(root, 'dist', relative(root, here), 'restore-child.js'));
}

/** Runs the child; never throws. */
export function placeRestoredFile(request: RestoreRequest): Promise<RestoreResult> {
  const params: RestoreParams = {
    target: request.target,
    size: request.size,
    sha256: request.sha256,
    mode: request.mode,
    mtimeMs: request.mtimeMs,
    ...(request.asUser ? { uid: request.asUser.uid, gid: request.asUser.gid } : request.gid !== undefined ? { gid: request.gid } : {}),
  };
  const program = restoreChildPath();
  // Said plainly, rather than as Node's "Cannot find module" on the child's stderr.
  if (!existsSync(program)) return Promise.resolve({ ok: false, code: 'ESPAWN', step: `spawn: no restore child at ${program}` });
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(process.execPath, [program, JSON.stringify(params)], {
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
      const parsed = parseRestoreResult(out);
      if (parsed) {
        resolve(parsed);
        return;
      }
      resolve({ ok: false, code: signal ? 'ETIMEDOUT' : `EXIT${code ?? ''}`, step: err.trim().slice(0, 200) || 'helper' });
    });
  });
}
