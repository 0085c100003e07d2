import { open, readFile, rename, unlink } from 'node:fs/promises';
import type { z } from 'zod';
import { decodeUntrusted } from '../../shared/schema';
import type { Logger } from '../../node-common/logging';

export interface AtomicWriteOptions {
  /** The file's mode, whatever the umask and whatever a leftover temporary file had: 0600 unless said. */
  mode?: number;
  /** fsync before the rename (default), so a power cut leaves the old or the new file, not an empty one. */
  flush?: boolean;
}

let written = 0;
/** The write to each path still in progress, so writes to one path land in the order they were asked for. */
const inProgress = new Map<string, Promise<void>>();

/**
 * Replaces `path` whole: written to a temporary file of its own beside it,
 * synced, then renamed over it, so a crash leaves the old version or the new
 * one, never half of one. Every piece of agent state goes through this (the
 * identity, the installation id, the policy in force, the outbox's
 * acknowledgement mark, the JSON state files); before, it was hand-copied four
 * times, each with one fixed temporary name that two writes at once would
 * share (found in review: truncated JSON). Writes to one path run one after
 * another, so the last one asked for is the one kept; a failed write removes
 * its temporary file and leaves the old file as it was.
 */
export function writeAtomically(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const previous = inProgress.get(path) ?? Promise.resolve();
  const done = previous.then(() => writeNow(path, data, options));
  const settled = done.catch(() => undefined);
  inProgress.set(path, settled);
  void settled.then(() => {
    if (inProgress.get(path) === settled) inProgress.delete(path);
  });
  return done;
}

async function writeNow(path: string, data: string | Uint8Array, options: AtomicWriteOptions): Promise<void> {
  const mode = options.mode ?? 0o600;
  const tmp = `${path}.${process.pid}.${++written}.tmp`;
  try {
    const handle = await open(tmp, 'w', mode);
    try {
      await handle.writeFile(data);
      // The mode given to open is masked by the umask and ignored for a file that already existed.
      await handle.chmod(mode);
      if (options.flush ?? true) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/**
 * A small piece of agent state kept as JSON in the data folder (approved USB
 * exceptions, used offline codes, agreements, the quarantine's records).
 * Saved through writeAtomically. A damaged file is reported and replaced by
 * the empty value rather than stopping the agent: losing an exception is
 * safer than failing open.
 */
export class JsonStateFile<T> {
  constructor(
    private readonly path: string,
    private readonly schema: z.ZodType<T>,
    private readonly empty: () => T,
    private readonly logger?: Logger,
  ) {}

  async load(): Promise<T> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return this.empty();
    }
    const decoded = decodeUntrusted(this.schema, text, { maxBytes: 4 * 1024 * 1024, maxDepth: 16 });
    if (decoded.ok) return decoded.value;
    this.logger?.error('state file is damaged; starting from empty', { path: this.path, problems: decoded.problems.slice(0, 3) });
    return this.empty();
  }

  /** The value as it is now is what is written, even if an earlier save is still under way. */
  save(value: T): Promise<void> {
    return writeAtomically(this.path, JSON.stringify(value));
  }
}
