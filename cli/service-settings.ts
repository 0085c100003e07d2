import type { z } from 'zod';
import type { Policy } from '../shared/policy/schema';
import { type EnvBinding, loadConfig } from '../node-common/config-loader';
import { loadPolicy } from '../node-common/policy-source';
import { EXIT, type Io, reportProblems } from './output';

/**
 * What a long-running command needs before it starts: its configuration (file,
 * environment, command line) and the policy that configuration names, both
 * validated. On a mistake it reports every problem and returns the exit code.
 */
export async function loadServiceSettings<S extends z.ZodType<{ policy: string }>>(
  io: Io,
  program: 'agent' | 'collector',
  schema: S,
  source: { file: string | undefined; bindings: readonly EnvBinding[]; overrides: Record<string, unknown> },
): Promise<{ config: z.output<S>; policy: Policy } | number> {
  const config = loadConfig(schema, {
    ...(source.file ? { file: source.file } : {}),
    env: process.env,
    bindings: source.bindings,
    overrides: source.overrides,
  });
  if (!config.ok) {
    reportProblems(io, `The ${program} configuration is not valid:`, config.problems);
    const missing = config.problems.some((p) => ['$.collector', '$.collector.url', '$.dataDir', '$.db'].includes(p.path));
    if (missing && !source.file) io.err(`Give the ${program} its settings in a file with --config FILE, or as options (see invigilator ${program} --help).`);
    return EXIT.USAGE;
  }
  const policy = await loadPolicy(config.value.policy);
  if (!policy.ok) {
    reportProblems(io, `The policy ${config.value.policy} is not valid:`, policy.problems);
    return EXIT.USAGE;
  }
  return { config: config.value, policy: policy.value };
}
