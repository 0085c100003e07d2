import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { identityOf } from '../../../../agent/os/file-read';
import { Quarantine, type QuarantineRecord } from '../../../../agent/software/downloads/quarantine';
import { identifier } from '../../../../shared/protocol/primitives';
import { tempDir } from '../../../support/cli';
import { silentLogger } from '../../../support/harness';
import { LINUX_DOWNLOADS } from '../../../../agent/software/downloads/linux/folders';

/**
 * The quarantine on real files: in by rename or by copy across file systems,
 * out byte for byte with mode, owner and mtime, and every refusal coded.
 * Run as root (as the agent is), files belong to uid 4242 and the restore's
 * helper drops to that user; otherwise everything is the test user's.
 */

const ROOT = process.geteuid?.() === 0;
const USER = ROOT ? 4242 : process.getuid!();
const GROUP = ROOT ? 4243 : process.getgid!();
const OLD_MTIME = 1_700_000_000.123456;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const micros = (ms: number) => Math.round(ms * 1000);

/** A machine: a data folder (the agent's) and a home with Downloads (the user's). */
function machine(homeParent?: string) {
  const root = tempDir('quarantine');
  chmodSync(root, 0o755);
  const dataDir = join(root, 'data');
  const homeBase = homeParent ? mkdtempSync(join(homeParent, 'invigilator-q-home-')) : root;
  chmodSync(homeBase, 0o755);
  const home = join(homeBase, 'home');
  const downloads = join(home, 'Downloads');
  mkdirSync(downloads, { recursive: true });
  if (ROOT) {
    chownSync(home, USER, GROUP);
    chownSync(downloads, USER, GROUP);
  }
  const q = new Quarantine({ dataDir, os: LINUX_DOWNLOADS, logger: silentLogger() });
  /** A file as the user left it: their own, an odd mode, an old mtime with microseconds. */
  const make = (name: string, content: Buffer, mode = 0o750, folder = downloads) => {
    const path = join(folder, name);
    writeFileSync(path, content);
    if (ROOT) chownSync(path, USER, GROUP);
    chmodSync(path, mode);
    utimesSync(path, OLD_MTIME, OLD_MTIME);
    return path;
  };
  const identity = (path: string) => identityOf(lstatSync(path, { bigint: true }));
  return { root, dataDir, home, downloads, q, make, identity };
}

async function quarantined(m: ReturnType<typeof machine>, path: string): Promise<QuarantineRecord> {
  const outcome = await m.q.quarantine(path, m.identity(path));
  if (!outcome.ok) throw new Error(`not quarantined: ${outcome.message}`);
  return outcome.record;
}

describe('the quarantine', () => {
  it('moves a file in by rename and puts it back byte-identical, with its mode, owner and mtime; nothing is deleted', async () => {
    const m = machine();
    await m.q.init();
    const content = Buffer.concat([Buffer.from('MZ'), randomBytes(300_000), Buffer.alloc(2 << 20), randomBytes(1000)]);
    const path = m.make('game.exe', content, 0o4750);
    const before = statSync(path);
    const record = await quarantined(m, path);

    expect(existsSync(path)).toBe(false);
    expect(record).toMatchObject({
      state: 'quarantined',
      method: 'rename',
      originalPath: path,
      uid: USER,
      gid: GROUP,
      mode: before.mode,
      size: content.length,
      sha256: sha(content),
    });
    expect(micros(record.mtimeMs)).toBe(micros(before.mtimeMs));
    expect(record.id).toMatch(/^q-\d{14}-[0-9a-f]{12}$/);
    expect(identifier.safeParse(record.id).success).toBe(true);
    expect(statSync(m.q.root).mode & 0o777).toBe(0o700);
    expect(statSync(join(m.q.root, record.id)).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(m.q.root, record.id)).sort()).toEqual(['file', 'record.json']);
    expect(statSync(join(m.q.root, record.id, 'file')).mode & 0o777).toBe(0o400);

    const checked: Array<{ sha256: string; size: number }> = [];
    const restored = await m.q.restore(record.id, async (file) => void checked.push(file));
    expect(restored).toMatchObject({ ok: true, record: { state: 'restored' } });
    // The guard's exemption is asked for once, for the checked bytes.
    expect(checked).toEqual([{ sha256: sha(content), size: content.length }]);
    const after = statSync(path);
    const bytes = readFileSync(path);
    expect(bytes.equals(content)).toBe(true);
    expect(sha(bytes)).toBe(record.sha256);
    expect(after.mode).toBe(before.mode);
    expect([after.uid, after.gid]).toEqual([USER, GROUP]);
    expect(micros(after.mtimeMs)).toBe(micros(before.mtimeMs));
    // The record stays, marked restored; the quarantine's copy left with the restore.
    expect(readdirSync(join(m.q.root, record.id))).toEqual(['record.json']);
    expect(await m.q.read(record.id)).toMatchObject({ state: 'restored', restoredAt: expect.any(String) });
    expect(await m.q.restore(record.id)).toMatchObject({ ok: false, code: 'INV_ERR_QUARANTINE_RESTORED' });
    // No temporary file was left beside it.
    expect(readdirSync(m.downloads)).toEqual(['game.exe']);
  });

  describe('across file systems', () => {
    const shm = '/dev/shm';
    const reason = !existsSync(shm)
      ? `${shm} does not exist`
      : statSync(shm).dev === statSync(tempDir('dev-check')).dev
        ? `${shm} is on the same file system as the temporary folder`
        : undefined;
    if (reason) console.warn(`Skipping the cross-file-system quarantine test: ${reason}`);

    (reason ? it.skip : it)('copies, syncs and checks before removing the original; holes stay holes; restores byte-identical', async () => {
      const m = machine(shm);
      await m.q.init();
      const path = join(m.downloads, 'sparse.AppImage');
      const fd = openSync(path, 'w');
      writeSync(fd, Buffer.from('\x7fELF-start'), 0, 10, 0);
      writeSync(fd, Buffer.from('end'), 0, 3, 64 * 1024 * 1024 - 3);
      closeSync(fd);
      if (ROOT) chownSync(path, USER, GROUP);
      chmodSync(path, 0o755);
      utimesSync(path, OLD_MTIME, OLD_MTIME);
      const content = readFileSync(path);
      const record = await quarantined(m, path);
      expect(record).toMatchObject({ method: 'copy', state: 'quarantined', sha256: sha(content), size: content.length });
      expect(existsSync(path)).toBe(false);
      const copy = statSync(join(m.q.root, record.id, 'file'));
      expect(copy.size).toBe(64 * 1024 * 1024);
      expect(copy.blocks * 512).toBeLessThan(8 * 1024 * 1024);

      expect(await m.q.restore(record.id)).toMatchObject({ ok: true });
      const back = readFileSync(path);
      expect(sha(back)).toBe(sha(content));
      expect(statSync(path).mode & 0o7777).toBe(0o755);
      expect(micros(statSync(path).mtimeMs)).toBe(micros(OLD_MTIME * 1000));
      rmSync(dirname(m.home), { recursive: true, force: true });
    });
  });

  describe('restore refuses, with a coded error, and keeps the file', () => {
    it('an unknown or hostile id', async () => {
      const m = machine();
      await m.q.init();
      for (const id of [
        'q-20240101000000-000000000000',
        '../../etc/passwd',
        'q-1/../../x',
        '',
        'Q-20240101000000-000000000000',
        'q-20240101000000-00000000000g',
      ]) {
        expect(await m.q.restore(id)).toMatchObject({ ok: false, code: 'INV_ERR_QUARANTINE_UNKNOWN' });
      }
    });

    it('something already at the path (a file, or a dangling link), then restores once it is moved away', async () => {
      const m = machine();
      await m.q.init();
      const path = m.make('tool.sh', Buffer.from('#!/bin/sh\necho hi\n'));
      const record = await quarantined(m, path);
      writeFileSync(path, 'a new file with the same name');
      expect(await m.q.restore(record.id)).toMatchObject({ ok: false, code: 'INV_ERR_RESTORE_TARGET_EXISTS' });
      rmSync(path);
      symlinkSync('/nowhere', path);
      expect(await m.q.restore(record.id)).toMatchObject({ ok: false, code: 'INV_ERR_RESTORE_TARGET_EXISTS' });
      expect(await m.q.read(record.id)).toMatchObject({ state: 'quarantined' });
      rmSync(path);
      expect(await m.q.restore(record.id)).toMatchObject({ ok: true });
      expect(readFileSync(path, 'utf8')).toBe('#!/bin/sh\necho hi\n');
    });

    it('a folder that no longer exists (not re-created)', async () => {
      const m = machine();
      await m.q.init();
      const record = await quarantined(m, m.make('x.exe', Buffer.from('MZ')));
      renameSync(m.downloads, join(m.home, 'Downloads-old'));
      expect(await m.q.restore(record.id)).toMatchObject({ ok: false, code: 'INV_ERR_RESTORE_FOLDER_MISSING' });
      expect(existsSync(m.downloads)).toBe(false);
    });

    it('a folder replaced by a link, or a path through a link', async () => {
      const m = machine();
      await m.q.init();
      const record = await quarantined(m, m.make('x.exe', Buffer.from('MZ')));
      const elsewhere = join(m.root, 'elsewhere');
      mkdirSync(elsewhere);
      renameSync(m.downloads, join(m.home, 'Downloads-old'));
      symlinkSync(elsewhere, m.downloads);
      expect(await m.q.restore(record.id)).toMatchObject({ ok: false, code: 'INV_ERR_RESTORE_UNSAFE_PATH' });
      rmSync(m.downloads);
      renameSync(join(m.home, 'Downloads-old'), m.downloads);
      renameSync(m.home, join(m.root, 'home-real'));
      symlinkSync(join(m.root, 'home-real'), m.home);
      expect(await m.q.restore(record.id)).toMatchObject({ ok: false, code: 'INV_ERR_RESTORE_UNSAFE_PATH' });
      expect(readdirSync(elsewhere)).toEqual([]);
    });

    (ROOT ? it : it.skip)('a folder the file’s owner cannot write (the helper writes as the owner)', async () => {
      const m = machine();
      await m.q.init();
      const record = await quarantined(m, m.make('x.exe', Buffer.from('MZ')));
      chownSync(m.downloads, 0, 0);
      chmodSync(m.downloads, 0o755);
      expect(await m.q.restore(record.id)).toMatchObject({ ok: false, code: 'INV_ERR_RESTORE_UNSAFE_PATH' });
      expect(readdirSync(m.downloads)).toEqual([]);
      expect(await m.q.read(record.id)).toMatchObject({ state: 'quarantined' });
    });
    if (!ROOT) console.warn('Skipping the owner-cannot-write restore test: it needs root, to drop to another user');

    it('a record or a file that is not what was quarantined', async () => {
      const m = machine();
      await m.q.init();
      const a = await quarantined(m, m.make('a.exe', Buffer.from('MZ a')));
      const b = await quarantined(m, m.make('b.exe', Buffer.from('MZ b')));
      const c = await quarantined(m, m.make('c.exe', Buffer.from('MZ c')));
      const d = await quarantined(m, m.make('d.exe', Buffer.from('MZ d')));
      const e = await quarantined(m, m.make('e.exe', Buffer.from('MZ e')));
      writeFileSync(join(m.q.root, a.id, 'record.json'), '{ not json');
      expect(await m.q.restore(a.id)).toMatchObject({ ok: false, code: 'INV_ERR_QUARANTINE_DAMAGED' });
      const file = join(m.q.root, b.id, 'file');
      chmodSync(file, 0o600);
      writeFileSync(file, 'MZ B');
      expect(await m.q.restore(b.id)).toMatchObject({ ok: false, code: 'INV_ERR_QUARANTINE_DAMAGED' });
      const tamper = (r: QuarantineRecord, originalPath: string) => writeFileSync(join(m.q.root, r.id, 'record.json'), JSON.stringify({ ...r, originalPath }));
      mkdirSync(join(m.root, 'etc-cron.d'));
      tamper(c, `${m.downloads}/../../etc-cron.d/x`);
      expect(await m.q.restore(c.id)).toMatchObject({ ok: false, code: 'INV_ERR_RESTORE_UNSAFE_PATH' });
      tamper(d, 'relative/x.exe');
      expect(await m.q.restore(d.id)).toMatchObject({ ok: false, code: 'INV_ERR_RESTORE_UNSAFE_PATH' });
      tamper(e, join(m.dataDir, 'quarantine', 'x.exe'));
      expect(await m.q.restore(e.id)).toMatchObject({ ok: false, code: 'INV_ERR_RESTORE_UNSAFE_PATH' });
      writeFileSync(join(m.q.root, e.id, 'record.json'), JSON.stringify({ ...e, id: c.id }));
      expect(await m.q.restore(e.id)).toMatchObject({ ok: false, code: 'INV_ERR_QUARANTINE_DAMAGED' });
      expect(readdirSync(m.downloads)).toEqual([]);
      expect(readdirSync(join(m.root, 'etc-cron.d'))).toEqual([]);
    });
  });

  describe('the original stays where it was when the move cannot be made safely', () => {
    it('a file replaced since it was judged is not moved', async () => {
      const m = machine();
      await m.q.init();
      const judged = m.make('x.exe', Buffer.from('MZ judged'));
      const identity = m.identity(judged);
      // Replaced the way a program replaces a file: a new one renamed over it.
      renameSync(m.make('x.exe.new', Buffer.from('MZ swapped in')), judged);
      const outcome = await m.q.quarantine(judged, identity);
      expect(outcome).toMatchObject({ ok: false, reason: 'gone', code: 'INV_ERR_QUARANTINE_FAILED' });
      expect(readFileSync(judged, 'utf8')).toBe('MZ swapped in');
      expect(await m.q.quarantine(join(m.downloads, 'never-there.exe'), identity)).toMatchObject({ ok: false, reason: 'gone' });
      expect(await m.q.quarantine(join(m.root, 'no-folder', 'x.exe'), identity)).toMatchObject({ ok: false, reason: 'gone' });
    });

    it('a file the OS will not let go (immutable) stays, unchanged; its record says abandoned', async () => {
      const m = machine();
      await m.q.init();
      const path = m.make('stuck.exe', Buffer.from('MZ stuck'));
      const chattr = spawnSync('chattr', ['+i', path]);
      if (chattr.status !== 0) {
        console.warn(`Skipping the immutable-file quarantine test: chattr +i failed (${String(chattr.stderr).trim() || chattr.error})`);
        return;
      }
      try {
        const outcome = await m.q.quarantine(path, m.identity(path));
        expect(outcome).toMatchObject({ ok: false, reason: 'failed', code: 'INV_ERR_QUARANTINE_FAILED' });
        expect(readFileSync(path, 'utf8')).toBe('MZ stuck');
        const [record] = await m.q.list();
        expect(record).toMatchObject({ state: 'abandoned', originalPath: path });
      } finally {
        execFileSync('chattr', ['-i', path]);
      }
    });
  });

  describe('init', () => {
    it('tightens the quarantine folder and finishes or abandons moves a crash interrupted', async () => {
      const m = machine();
      mkdirSync(join(m.dataDir, 'quarantine'), { recursive: true, mode: 0o777 });
      chmodSync(join(m.dataDir, 'quarantine'), 0o777);
      const pending = (id: string, withFile: boolean) => {
        const folder = join(m.dataDir, 'quarantine', id);
        mkdirSync(folder);
        const record: QuarantineRecord = {
          v: 1,
          id,
          state: 'pending',
          method: 'rename',
          originalPath: join(m.downloads, `${id}.exe`),
          uid: USER,
          gid: GROUP,
          mode: 0o100644,
          size: 2,
          mtimeMs: 1,
          identity: '1:2',
          quarantinedAt: new Date().toISOString(),
        };
        writeFileSync(join(folder, 'record.json'), JSON.stringify(record));
        if (withFile) writeFileSync(join(folder, 'file'), 'MZ');
      };
      pending('q-20240101000000-aaaaaaaaaaaa', true);
      pending('q-20240101000000-bbbbbbbbbbbb', false);
      await m.q.init();
      expect(statSync(m.q.root).mode & 0o777).toBe(0o700);
      expect(await m.q.read('q-20240101000000-aaaaaaaaaaaa')).toMatchObject({ state: 'quarantined', sha256: sha(Buffer.from('MZ')) });
      expect(await m.q.read('q-20240101000000-bbbbbbbbbbbb')).toMatchObject({ state: 'abandoned' });
      expect((await m.q.list()).map((r) => r.id)).toEqual(['q-20240101000000-bbbbbbbbbbbb', 'q-20240101000000-aaaaaaaaaaaa']);
    });

    it('refuses a quarantine folder that is a link', async () => {
      const m = machine();
      mkdirSync(m.dataDir);
      mkdirSync(join(m.root, 'elsewhere'));
      symlinkSync(join(m.root, 'elsewhere'), join(m.dataDir, 'quarantine'));
      await expect(m.q.init()).rejects.toThrow(/not a folder/);
    });
  });
});
