import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InputProblem } from '../shared/errors';
import type { Policy } from '../shared/policy/schema';
import { decodePolicy, validatePolicy } from '../shared/policy/validate';
import { writeAtomically } from './core/state-file';

/**
 * The policy in force on this device. A pushed policy is checked completely
 * and either replaces the old one whole or is rejected whole: never half-applied.
 * It is kept on disk so enforcement survives a restart without the collector.
 */
export class PolicyKeeper {
  private readonly path: string;

  private constructor(
    dataDir: string,
    private policy: Policy,
  ) {
    this.path = join(dataDir, 'policy.json');
  }

  /** The last policy the collector pushed, or else the configured fallback. */
  static async open(dataDir: string, fallback: Policy): Promise<PolicyKeeper> {
    const keeper = new PolicyKeeper(dataDir, fallback);
    try {
      const saved = decodePolicy(await readFile(keeper.path));
      if (saved.ok) keeper.policy = saved.value;
    } catch {
      // No saved policy yet.
    }
    return keeper;
  }

  get current(): Policy {
    return this.policy;
  }

  async replace(candidate: Policy): Promise<{ ok: true } | { ok: false; problems: readonly InputProblem[] }> {
    const checked = validatePolicy(candidate);
    if (!checked.ok) return checked;
    await writeAtomically(this.path, JSON.stringify(checked.value));
    this.policy = checked.value;
    return { ok: true };
  }
}
