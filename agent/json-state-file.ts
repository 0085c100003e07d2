import { readFile, rename, writeFile } from 'node:fs/promises';
import type { z } from 'zod';
import { decodeUntrusted } from '../shared/schema';
import type { Logger } from '../node-common/logging';

/**
 * A small piece of agent state kept as JSON in the data folder (approved USB
 * exceptions, used offline codes). Written whole to a temporary file, synced,
 * then renamed, so a crash leaves the old or the new version, never half of
 * one. A damaged file is reported and replaced by the empty value rather than
 * stopping the agent: losing an exception is safer than failing open.
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

  private saving: Promise<void> = Promise.resolve();
  private saves = 0;

  /**
   * Saves run one after another, each through its own temporary file: two at
   * once on one temporary name left truncated JSON behind (found in review).
   */
  save(value: T): Promise<void> {
    const text = JSON.stringify(value);
    const tmp = `${this.path}.${process.pid}.${++this.saves}.tmp`;
    const done = this.saving.then(async () => {
      await writeFile(tmp, text, { mode: 0o600, flush: true });
      await rename(tmp, this.path);
    });
    this.saving = done.catch(() => undefined);
    return done;
  }
}
