import { randomBytes } from 'node:crypto';
import { type BigIntStats, constants } from 'node:fs';
import { type FileHandle, chmod, chown, link, lstat, mkdir, open, readFile, readdir, readlink, realpath, rename, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize } from 'node:path';
import { z } from 'zod';
import { ERRORS, type ErrorCode } from '../../../shared/errors';
import { type Outcome, type Refusal, refusal } from '../../core/result';
import type { DownloadsOs } from './downloads-os';
import { decodeUntrusted } from '../../../shared/schema';
import type { Logger } from '../../../node-common/logging';
import { JsonStateFile } from '../../core/state-file';
import { failureOf, hashHandle, identityOf, isAllZero, openRegular } from '../../os/file-read';
import { isInside } from './file-folders';
import { placeRestoredFile } from './quarantine-restore';

/**
 * The quarantine: files moved out of people's reach, never deleted.
 *
 * Layout: `<dataDir>/quarantine/` (mode 0700, the agent's), one folder per
 * file named by its quarantine id (`q-<UTC yyyymmddhhmmss>-<12 hex>`), holding
 * the file as `file` (mode 0400; never under its own, possibly hostile, name)
 * and `record.json`: original path, owner uid and gid, mode, mtime, size,
 * SHA-256 and the original's device and inode.
 *
 * **In.** On the same file system the file is renamed in, so its bytes are
 * never copied; the inode that arrives is checked against the one that was
 * judged, and put back if it is not it. Across file systems it is copied with
 * `O_EXCL`, synced, read back and hashed, and the original is removed only
 * once the copy's hash matches and the record says so; any failure before that
 * removes the unfinished copy and leaves the original where it was. On Linux
 * the folder the file is in is held open and named through
 * `/proc/self/fd/<n>`, so a folder swapped for a link during the move
 * changes nothing (Node has no `renameat`); elsewhere the inode checks are
 * what protect. A record is written `pending` before the move and finished
 * after it, so a crash in between is completed or abandoned by {@link
 * Quarantine.init} at the next start, never lost.
 *
 * **Out.** {@link Quarantine.restore} puts a file back where it was, byte for
 * byte, with its mode, owner and mtime (to the microsecond: Node sets times as
 * a double), refusing with a coded error when the id is unknown, the record
 * or the file does not match, something now exists at the path, the folder no
 * longer exists (it is not re-created: the agent would have to guess its owner
 * and mode, and re-creating folders as root in a user's tree is how files end
 * up where they should not), or the path goes through a link. The bytes are
 * written by a helper process with the owner's rights (see
 * quarantine-restore.ts). A restored file's folder and record stay, marked
 * `restored`: the agent deletes nothing from the quarantine.
 */

export const QUARANTINE_ID = /^q-\d{14}-[0-9a-f]{12}$/;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
export const quarantineRecord = z.strictObject({
  v: z.literal(1),
  id: z.string().regex(QUARANTINE_ID),
  /** `pending`: the move had not finished; `abandoned`: it did not happen, the file stayed where it was. */
  state: z.enum(['pending', 'quarantined', 'restored', 'abandoned']),
  method: z.enum(['rename', 'copy']),
  originalPath: z.string().min(1).max(8192),
  uid: z.number().int().min(0),
  gid: z.number().int().min(0),
  mode: z.number().int().min(0).max(0o177777),
  size: z.number().int().min(0),
  mtimeMs: z.number(),
  sha256: sha256Hex.optional(),
  /** `dev:ino` of the original file. */
  identity: z.string().max(100),
  quarantinedAt: z.string().max(64),
  restoredAt: z.string().max(64).optional(),
  note: z.string().max(1000).optional(),
});
export type QuarantineRecord = z.infer<typeof quarantineRecord>;

export type QuarantineOutcome =
  | { ok: true; record: QuarantineRecord }
  /** `gone`: the file was deleted or replaced before it could be moved (nothing to report). */
  | (Refusal & { reason: 'gone' | 'failed' });

export type RestoreOutcome = Outcome<{ record: QuarantineRecord }>;

export interface QuarantineOptions {
  dataDir: string;
  /** This OS's facts (downloads/<os>/folders.ts), chosen by the composition root. */
  os: DownloadsOs;
  logger: Logger;
  now?: () => number;
  /** Longest a file may take to hash (in, out, and the restore's check). Default 10 minutes. */
  hashTimeoutMs?: number;
  /** Longest the restore helper may run. Default 10 minutes. */
  restoreTimeoutMs?: number;
}

/** A folder held so that what is done in it happens in it, whatever its path names meanwhile. */
interface Pin {
  /** A path that names this very folder: `/proc/self/fd/<n>` on Linux, its real path elsewhere. */
  via: string;
  /** Its real path, for the record. */
  real: string;
  close(): Promise<void>;
}

function gone(detail: string): QuarantineOutcome {
  return { ...no('INV_ERR_QUARANTINE_FAILED', detail), reason: 'gone' };
}

function no(code: ErrorCode, detail?: string): Refusal {
  return refusal(code, detail ? `${ERRORS[code]}: ${detail}` : ERRORS[code]);
}

export class Quarantine {
  readonly root: string;
  private readonly log: Logger;
  private readonly now: () => number;
  private procPins = false;

  constructor(private readonly options: QuarantineOptions) {
    this.root = join(options.dataDir, 'quarantine');
    this.log = options.logger.child({ component: 'quarantine' });
    this.now = options.now ?? Date.now;
  }

  private get posix(): boolean {
    return this.options.os.unixFiles;
  }
  private get hashTimeoutMs(): number {
    return this.options.hashTimeoutMs ?? 10 * 60_000;
  }

  /** Creates (or tightens) the quarantine folder and finishes or abandons moves a crash interrupted. */
  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const stats = await lstat(this.root);
    if (!stats.isDirectory()) throw new Error(`${this.root} is not a folder (a link?); the quarantine will not use it`);
    if (this.posix) {
      await chmod(this.root, 0o700);
      const me = process.geteuid?.();
      if (me !== undefined && stats.uid !== me) {
        await chown(this.root, me, process.getegid?.() ?? stats.gid).catch((e: unknown) =>
          this.log.warn('the quarantine folder belongs to another account and could not be taken back', { error: String(e) }),
        );
      }
    }
    if (this.options.os.procFdPins) this.procPins = await probeProcPins(this.root);
    await this.recover();
  }

  /**
   * Moves the file at `path` into the quarantine, if it is still the file that
   * was judged (`identity`, from {@link identityOf}). The original stays where
   * it was unless the quarantine holds it, checked.
   */
  async quarantine(path: string, identity: string): Promise<QuarantineOutcome> {
    let pin: Pin;
    try {
      pin = await this.pin(dirname(path));
    } catch (e) {
      const failure = failureOf(e);
      return failure.reason === 'gone' ? gone('the folder has gone') : this.failed(`${failure.code}`);
    }
    try {
      return await this.moveIn(pin, basename(path), identity);
    } finally {
      await pin.close();
    }
  }

  private failed(detail: string): QuarantineOutcome {
    return { ...no('INV_ERR_QUARANTINE_FAILED', detail), reason: 'failed' };
  }

  private async moveIn(pin: Pin, name: string, identity: string): Promise<QuarantineOutcome> {
    const source = join(pin.via, name);
    let before: BigIntStats;
    try {
      before = await lstat(source, { bigint: true });
    } catch (e) {
      const f = failureOf(e);
      return f.reason === 'gone' ? gone('the file has gone') : this.failed(String(f.code));
    }
    if (!before.isFile() || identityOf(before) !== identity) {
      return gone('the file was replaced before it could be moved');
    }
    const id = this.newId();
    const folder = join(this.root, id);
    const dest = join(folder, 'file');
    const base: QuarantineRecord = {
      v: 1,
      id,
      state: 'pending',
      method: 'rename',
      originalPath: join(pin.real, name),
      uid: Number(before.uid),
      gid: Number(before.gid),
      mode: Number(before.mode),
      size: Number(before.size),
      mtimeMs: Number(before.mtimeNs) / 1e6,
      identity,
      quarantinedAt: new Date(this.now()).toISOString(),
    };
    try {
      await mkdir(folder, { mode: 0o700 });
      if (this.posix) await chmod(folder, 0o700);
      await this.save(base);
    } catch (e) {
      this.log.error('could not prepare a quarantine folder', { id, error: String(e) });
      return this.failed('the quarantine folder could not be written');
    }
    try {
      await rename(source, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EXDEV') return this.copyIn({ ...base, method: 'copy' }, source, dest);
      await this.save({ ...base, state: 'abandoned', note: `not moved: ${code ?? 'error'}` }).catch(() => undefined);
      return failureOf(e).reason === 'gone' ? gone('the file has gone') : this.failed(`the file could not be moved (${code ?? String(e)}); it is where it was`);
    }
    const moved = await lstat(dest, { bigint: true }).catch(() => undefined);
    if (!moved || !moved.isFile() || identityOf(moved) !== identity) {
      // Something else was swapped in at the last moment: it goes back, untouched.
      const back = await link(dest, source).then(
        () => unlink(dest).then(() => true),
        () => false,
      );
      await this.save({ ...base, state: 'abandoned', note: back ? 'a different file was moved and put back' : 'a different file was moved; kept here' });
      return gone('the file was replaced while it was moved');
    }
    if (this.posix) await chmod(dest, 0o400).catch(() => undefined);
    const sha256 = await this.hashOf(dest);
    const record: QuarantineRecord = { ...base, state: 'quarantined', ...(sha256 ? { sha256 } : {}) };
    await this.save(record);
    await syncFolder(this.posix, pin.via);
    return { ok: true, record };
  }

  /** Across file systems: copy, sync, verify, record, and only then remove the original. */
  private async copyIn(base: QuarantineRecord, source: string, dest: string): Promise<QuarantineOutcome> {
    await this.save(base).catch(() => undefined);
    const abandon = async (note: string, removeCopy: boolean): Promise<QuarantineOutcome> => {
      if (removeCopy) await unlink(dest).catch(() => undefined);
      await this.save({ ...base, state: 'abandoned', note }).catch(() => undefined);
      return this.failed(`${note}; the file is where it was`);
    };
    const opened = await openRegular(source);
    if (!opened.ok) {
      await this.save({ ...base, state: 'abandoned', note: `not copied: ${opened.reason}` }).catch(() => undefined);
      return opened.reason === 'gone' ? gone('the file has gone') : this.failed(opened.reason);
    }
    const src = opened.handle;
    let sha256: string;
    try {
      if (identityOf(opened.stats) !== base.identity) return await abandon('the file was replaced', false);
      const out = await open(dest, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o600);
      try {
        const copied = await hashHandle(src, {
          timeoutMs: this.hashTimeoutMs,
          onChunk: async (chunk, position) => {
            // Holes stay holes: zeros are not written, and the length is set at the end.
            if (!isAllZero(chunk)) await writeAll(out, chunk, position);
          },
        });
        if (!copied.ok) return await abandon(`copy failed: ${copied.reason}`, true);
        await out.truncate(copied.size);
        await out.sync();
        const after = await src.stat({ bigint: true });
        if (after.size !== opened.stats.size || after.mtimeNs !== opened.stats.mtimeNs || BigInt(copied.size) !== after.size) {
          return await abandon('the file changed while it was copied', true);
        }
        const check = await hashHandle(out, { timeoutMs: this.hashTimeoutMs });
        if (!check.ok || check.sha256 !== copied.sha256 || check.size !== copied.size) return await abandon('the copy did not read back the same', true);
        sha256 = copied.sha256;
      } finally {
        await out.close().catch(() => undefined);
      }
    } catch (e) {
      return await abandon(`copy failed: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, true);
    } finally {
      await src.close().catch(() => undefined);
    }
    const record: QuarantineRecord = { ...base, state: 'quarantined', sha256 };
    try {
      await this.save(record);
      const still = await lstat(source, { bigint: true });
      if (identityOf(still) !== base.identity) return await abandon('the file was replaced while it was copied', true);
      await unlink(source);
    } catch (e) {
      if (failureOf(e).reason === 'gone') {
        // The original went by itself meanwhile; the checked copy is what is left of it.
        this.log.warn('a file being quarantined was removed by someone else; the quarantine keeps its copy', { id: base.id });
      } else {
        return await abandon(`the original could not be removed (${(e as NodeJS.ErrnoException).code ?? String(e)})`, true);
      }
    }
    if (this.posix) await chmod(dest, 0o400).catch(() => undefined);
    await syncFolder(this.posix, dirname(dest));
    return { ok: true, record };
  }

  /**
   * Puts a quarantined file back exactly where and as it was. `beforePlace`
   * runs once the file has been checked, just before it reappears (the guard
   * exempts it from the watch there).
   */
  async restore(id: string, beforePlace?: (file: { sha256: string; size: number }) => Promise<void>): Promise<RestoreOutcome> {
    if (!QUARANTINE_ID.test(id)) return no('INV_ERR_QUARANTINE_UNKNOWN', 'not a quarantine id');
    const read = await this.read(id);
    if (read === 'missing') return no('INV_ERR_QUARANTINE_UNKNOWN');
    if (read === 'damaged') return no('INV_ERR_QUARANTINE_DAMAGED', 'the record cannot be read');
    const record = read;
    if (record.state === 'restored') return no('INV_ERR_QUARANTINE_RESTORED');
    if (record.state !== 'quarantined') return no('INV_ERR_QUARANTINE_UNKNOWN', 'the move into quarantine never finished');
    const target = record.originalPath;
    const unsafe = this.unsafePath(target);
    if (unsafe) return no('INV_ERR_RESTORE_UNSAFE_PATH', unsafe);
    const parent = dirname(target);
    try {
      const folder = await lstat(parent);
      if (!folder.isDirectory()) return no('INV_ERR_RESTORE_UNSAFE_PATH', 'the folder is now a link or a file');
      if (!this.samePath(await realpath(parent), parent)) return no('INV_ERR_RESTORE_UNSAFE_PATH', 'the path now goes through a link');
    } catch (e) {
      return failureOf(e).reason === 'gone' ? no('INV_ERR_RESTORE_FOLDER_MISSING') : no('INV_ERR_RESTORE_FAILED', (e as NodeJS.ErrnoException).code);
    }
    try {
      await lstat(target);
      return no('INV_ERR_RESTORE_TARGET_EXISTS');
    } catch (e) {
      if (failureOf(e).reason !== 'gone') return no('INV_ERR_RESTORE_FAILED', (e as NodeJS.ErrnoException).code);
    }
    const file = join(this.root, id, 'file');
    const opened = await openRegular(file);
    if (!opened.ok) return no('INV_ERR_QUARANTINE_DAMAGED', `the quarantined file cannot be read (${opened.reason})`);
    let placed;
    try {
      const hashed = await hashHandle(opened.handle, { timeoutMs: this.hashTimeoutMs });
      if (!hashed.ok) return no('INV_ERR_RESTORE_FAILED', `the quarantined file could not be checked (${hashed.reason})`);
      if (hashed.size !== record.size || (record.sha256 !== undefined && hashed.sha256 !== record.sha256)) {
        return no('INV_ERR_QUARANTINE_DAMAGED', 'the quarantined file is not the one recorded');
      }
      await beforePlace?.({ sha256: hashed.sha256, size: hashed.size });
      const me = process.geteuid?.();
      const asUser = this.posix && me === 0 && record.uid !== 0 ? { uid: record.uid, gid: record.gid } : undefined;
      placed = await placeRestoredFile({
        source: opened.handle,
        target,
        size: record.size,
        sha256: hashed.sha256,
        mode: record.mode,
        mtimeMs: record.mtimeMs,
        ...(asUser ? { asUser } : this.posix ? { gid: record.gid } : {}),
        timeoutMs: this.options.restoreTimeoutMs ?? 10 * 60_000,
      });
    } finally {
      await opened.handle.close().catch(() => undefined);
    }
    if (!placed.ok) {
      this.log.warn('a restore was refused or failed', { id, code: placed.code, step: placed.step });
      if (placed.code === 'EEXIST') return no('INV_ERR_RESTORE_TARGET_EXISTS');
      if (placed.code === 'ENOENT') return no('INV_ERR_RESTORE_FOLDER_MISSING');
      if (placed.code === 'EACCES' || placed.code === 'EPERM' || placed.code === 'ELOOP') {
        return no('INV_ERR_RESTORE_UNSAFE_PATH', "the file's owner cannot write there");
      }
      return no('INV_ERR_RESTORE_FAILED', `${placed.code} at ${placed.step}`);
    }
    const restored: QuarantineRecord = { ...record, state: 'restored', restoredAt: new Date(this.now()).toISOString() };
    await this.save(restored);
    // The file is back: this copy leaves the quarantine with it. The record stays.
    await unlink(file).catch((e: unknown) => this.log.warn('a restored file is still in the quarantine too', { id, error: String(e) }));
    return { ok: true, record: restored };
  }

  /** A record by id; `missing` or `damaged` when there is none to trust. */
  async read(id: string): Promise<QuarantineRecord | 'missing' | 'damaged'> {
    if (!QUARANTINE_ID.test(id)) return 'missing';
    const folder = join(this.root, id);
    try {
      const stats = await lstat(folder);
      if (!stats.isDirectory()) return 'damaged';
    } catch {
      return 'missing';
    }
    let text: string;
    try {
      text = await readFile(join(folder, 'record.json'), 'utf8');
    } catch {
      return 'damaged';
    }
    const decoded = decodeUntrusted(quarantineRecord, text, { maxBytes: 64 * 1024, maxDepth: 4 });
    if (!decoded.ok || decoded.value.id !== id) return 'damaged';
    return decoded.value;
  }

  /** Every record (at most `limit`), newest first. */
  async list(limit = 10_000): Promise<QuarantineRecord[]> {
    const names = (await readdir(this.root).catch(() => [] as string[])).filter((n) => QUARANTINE_ID.test(n));
    names.sort().reverse();
    const out: QuarantineRecord[] = [];
    for (const name of names.slice(0, limit)) {
      const r = await this.read(name);
      if (typeof r === 'object') out.push(r);
    }
    return out;
  }

  /** Why a recorded path cannot be trusted as a place to write, or undefined. */
  private unsafePath(path: string): string | undefined {
    if (path.includes('\0')) return 'the path holds a NUL';
    if (!isAbsolute(path) || normalize(path) !== path) return 'the path is not absolute and plain';
    if (this.options.os.devicePaths && /^\\\\[?.]\\/.test(path)) return 'the path is a device path';
    const name = basename(path);
    if (!name || name === '.' || name === '..') return 'the path names no file';
    if (isInside(this.options.os.paths, this.options.dataDir, path)) return "the path is inside the agent's own data";
    return undefined;
  }

  private samePath(a: string, b: string): boolean {
    return this.options.os.paths.foldsCase ? a.toLowerCase() === b.toLowerCase() : a === b;
  }

  private newId(): string {
    const stamp = new Date(this.now())
      .toISOString()
      .replace(/[^0-9]/g, '')
      .slice(0, 14);
    return `q-${stamp}-${randomBytes(6).toString('hex')}`;
  }

  private async save(record: QuarantineRecord): Promise<void> {
    await new JsonStateFile(join(this.root, record.id, 'record.json'), quarantineRecord, () => record).save(record);
    await syncFolder(this.posix, join(this.root, record.id));
  }

  private async hashOf(path: string): Promise<string | undefined> {
    const opened = await openRegular(path);
    if (!opened.ok) return undefined;
    try {
      const hashed = await hashHandle(opened.handle, { timeoutMs: this.hashTimeoutMs });
      return hashed.ok ? hashed.sha256 : undefined;
    } finally {
      await opened.handle.close().catch(() => undefined);
    }
  }

  private async pin(folder: string): Promise<Pin> {
    if (this.procPins) {
      const handle = await open(folder, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0));
      const via = `/proc/self/fd/${handle.fd}`;
      try {
        const real = await readlink(via);
        return { via, real, close: () => handle.close().catch(() => undefined) };
      } catch (e) {
        await handle.close().catch(() => undefined);
        throw e;
      }
    }
    const real = await realpath(folder);
    return { via: real, real, close: async () => undefined };
  }

  /** Moves a crash interrupted: finished when the file arrived, abandoned (the file where it was) when not. */
  private async recover(): Promise<void> {
    const names = (await readdir(this.root).catch(() => [] as string[])).filter((n) => QUARANTINE_ID.test(n)).slice(0, 100_000);
    for (const name of names) {
      const record = await this.read(name);
      if (typeof record !== 'object' || record.state !== 'pending') continue;
      const file = join(this.root, name, 'file');
      const here = await lstat(file, { bigint: true }).catch(() => undefined);
      if (record.method === 'rename') {
        if (here?.isFile()) {
          if (this.posix) await chmod(file, 0o400).catch(() => undefined);
          const sha256 = await this.hashOf(file);
          await this.save({ ...record, state: 'quarantined', ...(sha256 ? { sha256 } : {}), note: 'finished after a restart' });
        } else {
          await this.save({ ...record, state: 'abandoned', note: 'the agent stopped before the move' });
        }
        continue;
      }
      const original = await lstat(record.originalPath, { bigint: true }).catch(() => undefined);
      if (original && identityOf(original) === record.identity) {
        // The copy never became the quarantined file: the original is still there.
        if (here) await unlink(file).catch(() => undefined);
        await this.save({ ...record, state: 'abandoned', note: 'the agent stopped during the copy; the file is where it was' });
      } else {
        await this.save({
          ...record,
          state: 'abandoned',
          note: here ? 'the agent stopped during the copy; the partial copy is kept' : 'the agent stopped during the copy',
        });
      }
    }
  }
}

async function writeAll(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, written, chunk.length - written, position + written);
    if (bytesWritten <= 0) throw new Error('short write');
    written += bytesWritten;
  }
}

/** Makes a rename or new file in a folder durable (POSIX; Windows cannot open a folder to sync it). */
async function syncFolder(posix: boolean, folder: string): Promise<void> {
  if (!posix) return;
  const handle = await open(folder, constants.O_RDONLY).catch(() => undefined);
  if (!handle) return;
  await handle.sync().catch(() => undefined);
  await handle.close().catch(() => undefined);
}

/** Whether `/proc/self/fd/<n>` names an open folder here (Linux with procfs mounted). */
async function probeProcPins(folder: string): Promise<boolean> {
  try {
    const handle = await open(folder, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0));
    try {
      return (await readlink(`/proc/self/fd/${handle.fd}`)) === (await realpath(folder));
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}
