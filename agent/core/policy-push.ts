import type { Policy } from '../../shared/policy/schema';
import type { InputProblem } from '../../shared/errors';
import type { Logger } from '../../node-common/logging';
import type { Recorder } from './events';

export interface PolicyPushDeps {
  /** Validates and keeps a pushed policy (the policy keeper's `replace`). */
  replace: (candidate: Policy) => Promise<{ ok: true } | { ok: false; problems: readonly InputProblem[] }>;
  record: Recorder;
  /** Every capability decides again under the policy now in force. */
  changed: () => Promise<void>;
  logger: Logger;
}

/** A policy the collector pushed: kept and applied (`policy.applied`), or refused with its problems (`policy.rejected`). */
export function policyPush(deps: PolicyPushDeps): (pushed: Policy) => void {
  const log = deps.logger.child({ component: 'agent' });
  const now = () => new Date().toISOString();
  return (pushed) => {
    deps
      .replace(pushed)
      .then((result) =>
        result.ok
          ? deps
              .record({ type: 'policy.applied', severity: 'notice', time: now(), data: { policyId: pushed.id, version: pushed.revision } })
              .then(() => deps.changed())
          : deps.record({
              type: 'policy.rejected',
              severity: 'warning',
              time: now(),
              data: { policyId: pushed.id, problems: result.problems.slice(0, 100).map((p) => ({ code: p.code, path: p.path.slice(0, 256) })) },
            }),
      )
      .catch((e: unknown) => log.error('could not apply a pushed policy', { error: String(e) }));
  };
}
