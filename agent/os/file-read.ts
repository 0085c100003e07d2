import { createHash } from 'node:crypto';
import { type BigIntStats, constants } from 'node:fs';
import { type FileHandle, lstat, open } from 'node:fs/promises';
import type { ErrorCode } from '../../shared/errors';

/**
 * Reading files that someone else controls (a pupil's home, a download, an
 * app bundle in a user's folder), for every capability: never through a link
 * at the last component, never blocking on a FIFO named `game.exe`, only
 * regular files, and either a bounded number of bytes (`readBounded`) or one
 * 1 MiB buffer at a time within a time bound (`hashFile`). The agent runs as
 * root: `readFile` on such a path would follow a link to `/dev/zero` and read
 * until memory runs out, or wait for ever on a FIFO.
 */

/** Read-only, no following a link at the last component, no blocking on FIFOs and devices. */
export const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
export const CHUNK_BYTES = 1 << 20;

/**
 * Why a file could not be read: `gone` (deleted or renamed meanwhile: skipped
 * silently), `not-a-file` (a link, FIFO, folder, device), `unreadable`
 * (permissions), `busy` (out of file handles, or locked: worth another try
 * later), `timeout` (larger than the time bound allows).
 */
export type ReadFailure = 'gone' | 'not-a-file' | 'unreadable' | 'busy' | 'timeout';

export type Failed = { ok: false; reason: ReadFailure; code?: string };

/** `dev:ino`, exact (bigint stats: inode numbers can exceed 2^53). */
export function identityOf(stats: BigIntStats): string {
  return `${stats.dev}:${stats.ino}`;
}

export function failureOf(e: unknown): Failed {
  const code = (e as NodeJS.ErrnoException | undefined)?.code ?? '';
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return { ok: false, reason: 'gone', code };
    case 'ELOOP':
    case 'EMLINK':
    case 'EISDIR':
    case 'ENXIO':
    case 'ENODEV':
      return { ok: false, reason: 'not-a-file', code };
    case 'EMFILE':
    case 'ENFILE':
    case 'EBUSY':
    case 'EAGAIN':
      return { ok: false, reason: 'busy', code };
    default:
      return { ok: false, reason: 'unreadable', ...(code ? { code } : {}) };
  }
}

/** Opens a regular file for reading. The stats are of the opened file, not of whatever the path names a moment later. */
export async function openRegular(path: string): Promise<{ ok: true; handle: FileHandle; stats: BigIntStats } | Failed> {
  let handle: FileHandle;
  try {
    handle = await open(path, READ_FLAGS);
  } catch (e) {
    return failureOf(e);
  }
  try {
    const stats = await handle.stat({ bigint: true });
    if (!stats.isFile()) {
      await handle.close();
      return { ok: false, reason: 'not-a-file' };
    }
    return { ok: true, handle, stats };
  } catch (e) {
    await handle.close().catch(() => undefined);
    return failureOf(e);
  }
}

/** The first `bytes` bytes of a regular file (fewer if it is shorter). */
export async function readHead(path: string, bytes: number): Promise<{ ok: true; head: Buffer; stats: BigIntStats } | Failed> {
  const opened = await openRegular(path);
  if (!opened.ok) return opened;
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await opened.handle.read(buffer, 0, bytes, 0);
    return { ok: true, head: buffer.subarray(0, bytesRead), stats: opened.stats };
  } catch (e) {
    return failureOf(e);
  } finally {
    await opened.handle.close().catch(() => undefined);
  }
}

/** What `readBounded` reads at most, unless told otherwise: a configuration file a user keeps is a few hundred bytes. */
export const MAX_SMALL_FILE_BYTES = 64 * 1024;

/**
 * A small file read whole, or why not: `too-large` (more than the bound; it is
 * refused, not cut short, so a file is never half-understood), or a `Failed`
 * reason. `code` is the catalogue's: INV_ERR_INPUT_TOO_LARGE for one too
 * large, INV_ERR_FILE_UNREADABLE for the rest; `errno` is the OS's, if any.
 */
export type BoundedRead =
  | { ok: true; bytes: Buffer }
  | { ok: false; reason: ReadFailure | 'too-large'; code: Extract<ErrorCode, 'INV_ERR_INPUT_TOO_LARGE' | 'INV_ERR_FILE_UNREADABLE'>; errno?: string };

/**
 * The whole of a small regular file someone else controls, at most
 * `maxBytes` (64 KiB by default). A link, a FIFO, a device or a folder is
 * refused without reading or waiting; so is a file longer than the bound,
 * after reading one byte past it (its size as stat'ed is not trusted: it may
 * grow while it is read).
 */
export async function readBounded(path: string, maxBytes = MAX_SMALL_FILE_BYTES): Promise<BoundedRead> {
  const unreadable = (f: Failed): BoundedRead => ({ ok: false, reason: f.reason, code: 'INV_ERR_FILE_UNREADABLE', ...(f.code ? { errno: f.code } : {}) });
  const opened = await openRegular(path);
  if (!opened.ok) return unreadable(opened);
  try {
    if (opened.stats.size > BigInt(maxBytes)) return { ok: false, reason: 'too-large', code: 'INV_ERR_INPUT_TOO_LARGE' };
    // Room for the size stat'ed and one byte more, to see the end; a file that grew meanwhile gets room up to the bound.
    let buffer = Buffer.alloc(Number(opened.stats.size) + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) buffer = Buffer.concat([buffer, Buffer.alloc(maxBytes + 1 - length)]);
      const { bytesRead } = await opened.handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) return { ok: false, reason: 'too-large', code: 'INV_ERR_INPUT_TOO_LARGE' };
    }
    return { ok: true, bytes: buffer.subarray(0, length) };
  } catch (e) {
    return unreadable(failureOf(e));
  } finally {
    await opened.handle.close().catch(() => undefined);
  }
}

export interface HashOptions {
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  now?: () => number;
  /** Called with each chunk read, in order (a copy being written alongside). Zero-filled chunks are included. */
  onChunk?: (chunk: Buffer, position: number) => Promise<void>;
}

export type Hashed = { ok: true; sha256: string; size: number };

/** SHA-256 of an open file from its start, one reused buffer at a time. */
export async function hashHandle(handle: FileHandle, options: HashOptions): Promise<Hashed | Failed> {
  const now = options.now ?? Date.now;
  const deadline = now() + options.timeoutMs;
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  let position = 0;
  try {
    for (;;) {
      if (now() > deadline) return { ok: false, reason: 'timeout' };
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, position);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      hash.update(chunk);
      if (options.onChunk) await options.onChunk(chunk, position);
      position += bytesRead;
    }
  } catch (e) {
    return failureOf(e);
  }
  return { ok: true, sha256: hash.digest('hex'), size: position };
}

/**
 * SHA-256 of the regular file at `path`, streamed within a time bound. A file
 * that is deleted or replaced while it is read is `gone`: what was read is no
 * longer what the path names.
 */
export async function hashFile(path: string, options: HashOptions): Promise<(Hashed & { stats: BigIntStats }) | Failed> {
  const opened = await openRegular(path);
  if (!opened.ok) return opened;
  let result: Hashed | Failed;
  try {
    result = await hashHandle(opened.handle, options);
  } finally {
    await opened.handle.close().catch(() => undefined);
  }
  if (!result.ok) return result;
  try {
    const after = await lstat(path, { bigint: true });
    if (identityOf(after) !== identityOf(opened.stats)) return { ok: false, reason: 'gone' };
  } catch (e) {
    return failureOf(e);
  }
  return { ...result, stats: opened.stats };
}

/** Whether every byte of the chunk is zero (a hole in a sparse file, or zeros worth not writing). */
export function isAllZero(chunk: Buffer): boolean {
  const zero = ZEROS.subarray(0, Math.min(chunk.length, ZEROS.length));
  for (let offset = 0; offset < chunk.length; offset += zero.length) {
    const part = chunk.subarray(offset, offset + zero.length);
    if (!part.equals(zero.subarray(0, part.length))) return false;
  }
  return true;
}
const ZEROS = Buffer.alloc(64 * 1024);
