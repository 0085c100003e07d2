import { type Decoded, type InputProblem, problem } from '../errors';
import { decodeUntrusted, validate } from '../schema';
import { DEFAULT_JSON_LIMITS } from '../untrusted-json';
import { type Policy, ROLE_SECTIONS, policySchema } from './schema';

/** Policies are small documents; this cap leaves room for long allowlists. */
export const POLICY_JSON_LIMITS = { ...DEFAULT_JSON_LIMITS, maxBytes: 4 * 1024 * 1024 };

/**
 * Checks a policy document completely: the schema, then the references the
 * schema cannot see (every cited clause exists, every named role is defined,
 * no id is used twice). Reports every problem found, not just the first.
 */
export function validatePolicy(value: unknown): Decoded<Policy> {
  const shaped = validate(policySchema, value);
  if (!shaped.ok) return shaped;
  const problems = crossReferenceProblems(shaped.value);
  return problems.length === 0 ? shaped : { ok: false, problems };
}

export function decodePolicy(input: string | Uint8Array): Decoded<Policy> {
  const parsed = decodeUntrusted(policySchema, input, POLICY_JSON_LIMITS);
  if (!parsed.ok) return parsed;
  const problems = crossReferenceProblems(parsed.value);
  return problems.length === 0 ? parsed : { ok: false, problems };
}

function crossReferenceProblems(policy: Policy): InputProblem[] {
  const problems: InputProblem[] = [];
  const roleIds = new Set<string>();
  policy.roles.definitions.forEach((role, i) => {
    if (roleIds.has(role.id))
      problems.push(problem('INV_ERR_POLICY_DUPLICATE', `$.roles.definitions[${i}].id`, `role ${JSON.stringify(role.id)} is defined twice`));
    roleIds.add(role.id);
  });
  if (!roleIds.has(policy.roles.default)) problems.push(unknownRole('$.roles.default', policy.roles.default));

  const checkClause = (path: string, id: string | undefined) => {
    if (id !== undefined && !Object.prototype.hasOwnProperty.call(policy.clauses, id)) {
      problems.push(problem('INV_ERR_POLICY_UNKNOWN_CLAUSE', path, `clause ${JSON.stringify(id)} is not defined in $.clauses`));
    }
  };

  for (const section of ROLE_SECTIONS) {
    const { default: defaults, roles = {} } = policy[section];
    forEachClause(defaults, `$.${section}.default`, checkClause);
    for (const [role, override] of Object.entries(roles)) {
      if (!roleIds.has(role)) problems.push(unknownRole(`$.${section}.roles.${role}`, role));
      forEachClause(override, `$.${section}.roles.${role}`, checkClause);
    }
  }
  checkClause('$.aup.clause', policy.aup.clause);
  checkClause('$.failsafe.clause', policy.failsafe.clause);

  const entryIds = new Set<string>();
  policy.usbAllowlist.forEach((entry, i) => {
    if (entryIds.has(entry.id))
      problems.push(problem('INV_ERR_POLICY_DUPLICATE', `$.usbAllowlist[${i}].id`, `allowlist entry ${JSON.stringify(entry.id)} is defined twice`));
    entryIds.add(entry.id);
  });
  return problems;
}

/** Finds every `clause` field in a settings object, however deeply nested (rules, categories, downloads). */
function forEachClause(value: unknown, path: string, visit: (path: string, id: string) => void): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => forEachClause(item, `${path}[${i}]`, visit));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (key === 'clause' && typeof child === 'string') visit(`${path}.clause`, child);
      else forEachClause(child, `${path}.${key}`, visit);
    }
  }
}

function unknownRole(path: string, role: string): InputProblem {
  return problem('INV_ERR_POLICY_UNKNOWN_ROLE', path, `role ${JSON.stringify(role)} is not defined in $.roles.definitions`);
}
