import { createHash } from 'node:crypto';
import { chmodSync, chownSync, closeSync, ftruncateSync, openSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { MAX_SMALL_FILE_BYTES, hashFile, isAllZero, openRegular, readBounded, readHead } from '../../../agent/os/file-read';
import { tempDir } from '../../support/cli';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('reading files someone else controls', () => {
  const dir = tempDir('file-read');

  it('hashes a file streamed, and reads only the head it is asked for', async () => {
    const content = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(3 * 1024 * 1024 + 17, 7)]);
    const path = join(dir, 'three-megabytes.exe');
    writeFileSync(path, content);
    const hashed = await hashFile(path, { timeoutMs: 60_000 });
    expect(hashed).toMatchObject({ ok: true, sha256: sha(content), size: content.length });
    const head = await readHead(path, 64);
    expect(head.ok && [...head.head]).toEqual([...content.subarray(0, 64)]);
  });

  it('gives up past its time bound', async () => {
    const path = join(dir, 'sparse-64m');
    const fd = openSync(path, 'w');
    ftruncateSync(fd, 64 * 1024 * 1024);
    closeSync(fd);
    let clock = 0;
    const result = await hashFile(path, { timeoutMs: 5, now: () => (clock += 1) });
    expect(result).toEqual({ ok: false, reason: 'timeout' });
  });

  it('a file that disappears while it is hashed is gone, not an error', async () => {
    const path = join(dir, 'vanishing.exe');
    writeFileSync(path, Buffer.alloc(4 * 1024 * 1024, 1));
    const result = await hashFile(path, {
      timeoutMs: 60_000,
      onChunk: async (_chunk, position) => {
        if (position === 0) unlinkSync(path);
      },
    });
    expect(result).toMatchObject({ ok: false, reason: 'gone' });
    expect(await hashFile(join(dir, 'never-there.exe'), { timeoutMs: 1000 })).toMatchObject({ ok: false, reason: 'gone' });
  });

  it('does not follow a link, and does not block on a FIFO named like a program', async () => {
    writeFileSync(join(dir, 'target'), 'MZ');
    symlinkSync(join(dir, 'target'), join(dir, 'link.exe'));
    expect(await readHead(join(dir, 'link.exe'), 64)).toMatchObject({ ok: false, reason: 'not-a-file' });
    execFileSync('mkfifo', [join(dir, 'fifo.exe')]);
    expect(await readHead(join(dir, 'fifo.exe'), 64)).toMatchObject({ ok: false, reason: 'not-a-file' });
    expect(await hashFile(join(dir, 'fifo.exe'), { timeoutMs: 1000 })).toMatchObject({ ok: false, reason: 'not-a-file' });
    expect(await openRegular(dir)).toMatchObject({ ok: false, reason: 'not-a-file' });
  });

  it('an unreadable file is unreadable (tested unprivileged when run as root)', async () => {
    const path = join(dir, 'locked.exe');
    writeFileSync(path, 'MZ');
    const root = process.geteuid?.() === 0;
    if (root) chownSync(path, 65534, 65534);
    chmodSync(path, 0o000);
    chmodSync(dir, 0o755);
    if (root) {
      process.setegid!(65534);
      process.seteuid!(65534);
    }
    try {
      expect(await readHead(path, 64)).toMatchObject({ ok: false, reason: 'unreadable', code: 'EACCES' });
    } finally {
      if (root) {
        process.seteuid!(0);
        process.setegid!(0);
      }
    }
  });

  it('isAllZero tells holes from data', () => {
    expect(isAllZero(Buffer.alloc(1 << 20))).toBe(true);
    const b = Buffer.alloc(1 << 20);
    b[(1 << 20) - 1] = 1;
    expect(isAllZero(b)).toBe(false);
    expect(isAllZero(Buffer.alloc(0))).toBe(true);
  });
});

describe('reading a small file someone else controls, whole and bounded', () => {
  const dir = tempDir('bounded-read');

  it('reads a small file whole, and one of exactly the bound', async () => {
    writeFileSync(join(dir, 'small'), 'XDG_DOWNLOAD_DIR="$HOME/Téléchargements"\n');
    const small = await readBounded(join(dir, 'small'));
    expect(small.ok && small.bytes.toString('utf8')).toBe('XDG_DOWNLOAD_DIR="$HOME/Téléchargements"\n');
    writeFileSync(join(dir, 'exact'), Buffer.alloc(MAX_SMALL_FILE_BYTES, 0x41));
    const exact = await readBounded(join(dir, 'exact'));
    expect(exact.ok && exact.bytes.length).toBe(MAX_SMALL_FILE_BYTES);
    expect(MAX_SMALL_FILE_BYTES).toBe(64 * 1024);
  });

  it('refuses a file past the bound rather than cutting it short, with the catalogue code', async () => {
    writeFileSync(join(dir, 'over-by-one'), Buffer.alloc(MAX_SMALL_FILE_BYTES + 1, 0x41));
    writeFileSync(join(dir, '100k'), Buffer.alloc(100 * 1024, 0x41));
    expect(await readBounded(join(dir, 'over-by-one'))).toEqual({ ok: false, reason: 'too-large', code: 'INV_ERR_INPUT_TOO_LARGE' });
    expect(await readBounded(join(dir, '100k'))).toEqual({ ok: false, reason: 'too-large', code: 'INV_ERR_INPUT_TOO_LARGE' });
    expect(await readBounded(join(dir, '100k'), 200 * 1024)).toMatchObject({ ok: true });
  });

  it('refuses a link (even to a small file), a FIFO, a device and a folder without reading or waiting', async () => {
    writeFileSync(join(dir, 'target'), 'fine');
    symlinkSync(join(dir, 'target'), join(dir, 'link'));
    symlinkSync('/dev/zero', join(dir, 'zeros'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    const unreadable = { ok: false, reason: 'not-a-file', code: 'INV_ERR_FILE_UNREADABLE' };
    expect(await readBounded(join(dir, 'link'))).toEqual({ ...unreadable, errno: 'ELOOP' });
    expect(await readBounded(join(dir, 'zeros'))).toEqual({ ...unreadable, errno: 'ELOOP' });
    expect(await readBounded(join(dir, 'fifo'))).toEqual(unreadable);
    expect(await readBounded('/dev/zero')).toEqual(unreadable);
    expect(await readBounded(dir)).toMatchObject(unreadable);
    expect(await readBounded(join(dir, 'never-there'))).toEqual({ ok: false, reason: 'gone', code: 'INV_ERR_FILE_UNREADABLE', errno: 'ENOENT' });
  });
});
