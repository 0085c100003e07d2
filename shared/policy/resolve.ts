import type { ClauseCitation } from '../protocol/primitives';
import type { Policy, RoleSection } from './schema';

/**
 * The role of a user, from the OS groups they belong to: the first role
 * definition listing any of their groups, else the policy's default role.
 * Group names compare case-insensitively, and a directory prefix
 * (`SCHOOL\Pupils`) matches the bare name (`Pupils`) either way round.
 */
export function roleForGroups(policy: Policy, groups: readonly string[]): string {
  const held = new Set(groups.flatMap(groupKeys));
  for (const role of policy.roles.definitions) {
    if (role.groups.some((g) => groupKeys(g).some((k) => held.has(k)))) return role.id;
  }
  return policy.roles.default;
}

function groupKeys(group: string): string[] {
  const lower = group.toLowerCase();
  const slash = lower.lastIndexOf('\\');
  return slash >= 0 ? [lower, lower.slice(slash + 1)] : [lower];
}

/** The settings of one section as they apply to one role: the defaults, overridden field by field. */
export function settingsFor<S extends RoleSection>(policy: Policy, section: S, role: string): Policy[S]['default'] {
  const { default: defaults, roles } = policy[section];
  const override = roles && Object.prototype.hasOwnProperty.call(roles, role) ? roles[role] : undefined;
  return { ...defaults, ...(override ?? {}) } as Policy[S]['default'];
}

/** The full citation for a clause id, for events and notices. */
export function citeClause(policy: Policy, clauseId: string): ClauseCitation {
  const clause = policy.clauses[clauseId];
  if (!clause) throw new Error(`clause ${clauseId} is not defined (validatePolicy guarantees every cited clause exists)`);
  return { id: clauseId, document: clause.document, section: clause.section, quote: clause.quote };
}
