import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExecutableHasher } from '../../../../agent/software/programs/executable-hasher';
import { tempDir } from '../../../support/cli';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('hashing executables', () => {
  it('hashes a file once, however often it is asked, and again when it changes', async () => {
    const dir = tempDir('hasher');
    const path = join(dir, 'tool');
    const v1 = randomBytes(3 * 1024 * 1024 + 7);
    writeFileSync(path, v1);
    const hasher = new ExecutableHasher();
    expect(await Promise.all([hasher.sha256(path), hasher.sha256(path), hasher.sha256(path)])).toEqual([sha(v1), sha(v1), sha(v1)]);
    expect(await hasher.sha256(path)).toBe(sha(v1));
    expect(hasher.reads).toBe(1);
    // Replaced by another file under the same name (a new inode): read again.
    const v2 = randomBytes(1024);
    writeFileSync(join(dir, 'tool.new'), v2);
    renameSync(join(dir, 'tool.new'), path);
    expect(await hasher.sha256(path)).toBe(sha(v2));
    // Rewritten in place with a new mtime: read again.
    writeFileSync(path, v1);
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    expect(await hasher.sha256(path)).toBe(sha(v1));
    expect(hasher.reads).toBe(3);
  });

  it('gives no hash, never an exception, for what cannot be read: missing, a folder, unreadable, too large', async () => {
    const dir = tempDir('hasher-bad');
    mkdirSync(join(dir, 'folder'));
    writeFileSync(join(dir, 'big'), Buffer.alloc(2048));
    writeFileSync(join(dir, 'locked'), 'x');
    chmodSync(join(dir, 'locked'), 0o000);
    const hasher = new ExecutableHasher({ maxBytes: 1024 });
    expect(await hasher.sha256(join(dir, 'missing'))).toBeUndefined();
    expect(await hasher.sha256(join(dir, 'folder'))).toBeUndefined();
    expect(await hasher.sha256(join(dir, 'big'))).toBeUndefined();
    // Root reads through mode 000; anyone else gets EACCES. Either way: a hash or none, never a throw.
    const locked = await hasher.sha256(join(dir, 'locked'));
    expect(locked === undefined || locked === sha(Buffer.from('x'))).toBe(true);
  });

  it('reads from where the process runs it (/proc/<pid>/exe), remembered under the path it was started from', async () => {
    const hasher = new ExecutableHasher();
    const self = await hasher.sha256('/the/path/node', `/proc/${process.pid}/exe`);
    expect(self).toBe(sha(readFileSync(`/proc/${process.pid}/exe`)));
  });

  it('hashes at most `concurrency` files at a time', async () => {
    const dir = tempDir('hasher-many');
    const files = Array.from({ length: 12 }, (_, i) => {
      const p = join(dir, `f${i}`);
      writeFileSync(p, randomBytes(256 * 1024));
      return p;
    });
    const hasher = new ExecutableHasher({ concurrency: 2 });
    let most = 0;
    const internals = hasher as unknown as { active: number };
    const timer = setInterval(() => (most = Math.max(most, internals.active)), 0);
    const hashes = await Promise.all(files.map((f) => hasher.sha256(f)));
    clearInterval(timer);
    expect(hashes.every((h) => typeof h === 'string' && h.length === 64)).toBe(true);
    expect(most).toBeLessThanOrEqual(2);
    expect(hasher.reads).toBe(12);
  });
});
