import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';

export interface ExecutableHasherOptions {
  /** Files hashed at once; the rest wait their turn. */
  concurrency?: number;
  /** Larger files are not hashed (no hash: a hash rule cannot match them). */
  maxBytes?: number;
  /** Hashes remembered; the oldest is forgotten first. */
  cacheEntries?: number;
}

interface FileKey {
  key: string;
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
}

/**
 * SHA-256 of executables, for the policy's hash rules. Each binary is hashed
 * once: the result is kept under (path, size, mtime, inode), so a program
 * started a thousand times costs one read, and a binary replaced in place
 * (new inode or new mtime) is read again. Reads are streamed, a few at a
 * time, and capped in size. A file that cannot be read gives no hash, never
 * an exception: a hash rule then simply does not match it.
 */
export class ExecutableHasher {
  private readonly concurrency: number;
  private readonly maxBytes: number;
  private readonly cacheEntries: number;
  private readonly cache = new Map<string, string>();
  private readonly inFlight = new Map<string, Promise<string | undefined>>();
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  /** Files actually read, for tests and the benchmark. */
  reads = 0;

  constructor(options: ExecutableHasherOptions = {}) {
    this.concurrency = Math.max(1, options.concurrency ?? 2);
    this.maxBytes = options.maxBytes ?? 512 * 1024 * 1024;
    this.cacheEntries = Math.max(1, options.cacheEntries ?? 4096);
  }

  /**
   * The hash of the executable at `path`. `readPath` is where its bytes are
   * read from when that differs (Linux: `/proc/<pid>/exe`, the very file the
   * process runs, even if `path` was since replaced or deleted).
   */
  async sha256(path: string, readPath: string = path): Promise<string | undefined> {
    const file = await this.identify(path, readPath);
    if (!file) return undefined;
    const cached = this.cache.get(file.key);
    if (cached) {
      // Recently used goes to the back of the line.
      this.cache.delete(file.key);
      this.cache.set(file.key, cached);
      return cached;
    }
    if (file.size > this.maxBytes) return undefined;
    const running = this.inFlight.get(file.key);
    if (running) return running;
    const work = this.withSlot(() => this.read(readPath, file)).finally(() => this.inFlight.delete(file.key));
    this.inFlight.set(file.key, work);
    return work;
  }

  private async identify(path: string, readPath: string): Promise<FileKey | undefined> {
    try {
      const s = await stat(readPath);
      if (!s.isFile()) return undefined;
      return { key: `${path}\0${s.size}\0${s.mtimeMs}\0${s.dev}:${s.ino}`, size: s.size, mtimeMs: s.mtimeMs, dev: s.dev, ino: s.ino };
    } catch {
      return undefined;
    }
  }

  private async withSlot<T>(work: () => Promise<T>): Promise<T> {
    while (this.active >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await work();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  /**
   * Reads the file streamed. Opened without blocking and checked to be the
   * regular file that was stat'ed: a script path is a pupil's to swap, and a
   * FIFO put there between the stat and the open would otherwise hold this
   * slot for ever.
   */
  private async read(readPath: string, file: FileKey): Promise<string | undefined> {
    this.reads++;
    let handle;
    try {
      handle = await open(readPath, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
    } catch {
      return undefined;
    }
    try {
      const s = await handle.stat();
      if (!s.isFile() || s.dev !== file.dev || s.ino !== file.ino) return undefined;
      const hash = createHash('sha256');
      const buffer = Buffer.alloc(256 * 1024);
      let bytes = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, bytes);
        if (bytesRead === 0) break;
        bytes += bytesRead;
        if (bytes > this.maxBytes || bytes > file.size) return undefined;
        hash.update(buffer.subarray(0, bytesRead));
      }
      // A file that changed while it was read is not remembered under its old identity.
      if (bytes !== file.size) return undefined;
      const digest = hash.digest('hex');
      this.remember(file.key, digest);
      return digest;
    } catch {
      return undefined;
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  private remember(key: string, digest: string): void {
    if (this.cache.size >= this.cacheEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, digest);
  }
}
