import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { restoreChildPath } from '../../../../agent/software/downloads/quarantine-restore';
import { tempDir } from '../../../support/cli';

/**
 * The restore child on its own, spoken to exactly as the agent speaks to it:
 * the real built program (`npm run build` first), its request as one JSON
 * argument, the bytes on stdin, one JSON answer on stdout. Run as root, it
 * drops to uid 4242 first, as it does for a pupil's file.
 */

const ROOT = process.geteuid?.() === 0;
const USER = ROOT ? 4242 : process.getuid!();
const GROUP = ROOT ? 4243 : process.getgid!();
const BYTES = Buffer.from('MZ the installer that was taken away');
const SHA = createHash('sha256').update(BYTES).digest('hex');

/** A user's folder, and the quarantined bytes in a file of the agent's. */
function scene() {
  const root = tempDir('restore-child');
  chmodSync(root, 0o755);
  const folder = join(root, 'Downloads');
  mkdirSync(folder);
  if (ROOT) chownSync(folder, USER, GROUP);
  const source = join(root, 'quarantined');
  writeFileSync(source, BYTES, { mode: 0o400 });
  return { folder, source };
}

/** Runs the child with `request` as its argument (none when undefined) and the source on stdin. */
function runChild(source: string, request: string | undefined) {
  const fd = openSync(source, 'r');
  try {
    const run = spawnSync(process.execPath, request === undefined ? [restoreChildPath()] : [restoreChildPath(), request], {
      stdio: [fd, 'pipe', 'pipe'],
      env: {},
      encoding: 'utf8',
      timeout: 10_000,
    });
    return { status: run.status, stderr: run.stderr, answer: JSON.parse(run.stdout) as unknown };
  } finally {
    closeSync(fd);
  }
}

const valid = (target: string) => ({
  target,
  size: BYTES.length,
  sha256: SHA,
  mode: 0o100644,
  mtimeMs: 1_700_000_000_123,
  ...(ROOT ? { uid: USER, gid: GROUP } : { gid: GROUP }),
});

describe('the restore child', () => {
  it('places the file when the request is well formed (the baseline for the refusals below)', () => {
    const { folder, source } = scene();
    const target = join(folder, 'game.exe');

    const run = runChild(source, JSON.stringify(valid(target)));

    expect(run).toMatchObject({ status: 0, answer: { ok: true, identity: expect.stringMatching(/^\d+:\d+$/) } });
    expect(readFileSync(target).equals(BYTES)).toBe(true);
    expect(lstatSync(target).uid).toBe(USER);
    expect(readdirSync(folder)).toEqual(['game.exe']);
  });

  it('refuses a malformed request with EINVAL at step input, and writes nothing', () => {
    const { folder, source } = scene();
    const target = join(folder, 'game.exe');
    const good = valid(target);
    const malformed: Array<[string, string | undefined]> = [
      ['no argument at all', undefined],
      ['not JSON', '{target:'],
      ['not an object', JSON.stringify([target])],
      ['null', 'null'],
      ['no target', JSON.stringify({ ...good, target: undefined })],
      ['a relative target', JSON.stringify({ ...good, target: 'Downloads/game.exe' })],
      ['a target with a NUL', JSON.stringify({ ...good, target: `${target}\0x` })],
      ['a size that is text', JSON.stringify({ ...good, size: String(BYTES.length) })],
      ['a negative size', JSON.stringify({ ...good, size: -1 })],
      ['a SHA-256 that is not hex', JSON.stringify({ ...good, sha256: 'z'.repeat(64) })],
      ['a mode beyond st_mode', JSON.stringify({ ...good, mode: 0o1000000 })],
      ['a uid without a gid', JSON.stringify({ ...good, uid: USER, gid: undefined })],
      ['a fractional uid', JSON.stringify({ ...good, uid: 1.5, gid: GROUP })],
      ['a field the protocol does not have', JSON.stringify({ ...good, overwrite: true })],
    ];

    for (const [why, request] of malformed) {
      const run = runChild(source, request);

      expect({ why, status: run.status, answer: run.answer }).toEqual({
        why,
        status: 0,
        answer: { ok: false, code: 'EINVAL', step: expect.stringMatching(/^input/) },
      });
      expect(readdirSync(folder)).toEqual([]);
    }
    expect(existsSync(target)).toBe(false);
  });

  it('never replaces what is already at the target, a file or a dangling link, and leaves no temporary file', () => {
    const { folder, source } = scene();
    const file = join(folder, 'game.exe');
    writeFileSync(file, 'what the pupil put there since');
    const link = join(folder, 'other.exe');
    symlinkSync('/etc/invigilator-no-such-file', link);
    if (ROOT) chownSync(file, USER, GROUP);

    const onFile = runChild(source, JSON.stringify(valid(file)));
    const onLink = runChild(source, JSON.stringify(valid(link)));

    expect(onFile).toMatchObject({ status: 0, answer: { ok: false, code: 'EEXIST', step: 'place' } });
    expect(onLink).toMatchObject({ status: 0, answer: { ok: false, code: 'EEXIST', step: 'place' } });
    expect(readFileSync(file, 'utf8')).toBe('what the pupil put there since');
    expect(readlinkSync(link)).toBe('/etc/invigilator-no-such-file');
    expect(existsSync('/etc/invigilator-no-such-file')).toBe(false);
    expect(readdirSync(folder).sort()).toEqual(['game.exe', 'other.exe']);
  });
});
