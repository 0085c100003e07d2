import type { Policy } from '../../shared/policy/schema';

/**
 * The policy with software control in audit mode for every role: what would
 * be stopped or quarantined is reported as such, and nothing is. For
 * `software.control: observe`, a developer's own machine.
 */
export function auditOnly(policy: Policy): Policy {
  const roles = policy.software.roles ?? {};
  return {
    ...policy,
    software: {
      default: { ...policy.software.default, mode: 'audit' },
      roles: Object.fromEntries(Object.entries(roles).map(([role, settings]) => [role, { ...settings, mode: 'audit' as const }])),
    },
  };
}
