import { type Decoded, type InputProblem, problem } from '../errors';
import { describeJsonError } from '../json-error-position';
import { validate } from '../schema';
import { DEFAULT_JSON_LIMITS, parseUntrustedJson } from '../untrusted-json';
import { type Policy, ROLE_SECTIONS, policySchema } from './schema';

/** Policies are small documents; this cap leaves room for long allowlists. */
export const POLICY_JSON_LIMITS = { ...DEFAULT_JSON_LIMITS, maxBytes: 4 * 1024 * 1024 };

/**
 * Checks a policy document completely: the schema, and the references the
 * schema cannot see (every cited clause exists, every named role is defined,
 * no id is used twice). Reports every problem found, not just the first: the
 * references are checked even when the shape is wrong elsewhere, as far as
 * the parts they need can be read, so one run shows every mistake.
 */
export function validatePolicy(value: unknown): Decoded<Policy> {
  const shaped = validate(policySchema, value);
  if (shaped.ok) {
    const problems = crossReferenceProblems(shaped.value);
    return problems.length === 0 ? shaped : { ok: false, problems };
  }
  const seen = new Set(shaped.problems.map((p) => p.path));
  return { ok: false, problems: [...shaped.problems, ...crossReferenceProblems(value).filter((p) => !seen.has(p.path))] };
}

export function decodePolicy(input: string | Uint8Array): Decoded<Policy> {
  const parsed = parseUntrustedJson(input, POLICY_JSON_LIMITS);
  if (!parsed.ok) {
    const text = typeof input === 'string' ? input : new TextDecoder().decode(input);
    return { ok: false, problems: parsed.problems.map((p) => (p.code === 'INV_ERR_INVALID_JSON' ? { ...p, message: describeJsonError(text, p.message) } : p)) };
  }
  return validatePolicy(parsed.value);
}

type Loose = Record<string, unknown>;
const asRecord = (value: unknown): Loose | undefined => (value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Loose) : undefined);

/**
 * Reads a policy that may not have passed the schema: a part that cannot be
 * read is skipped, never guessed at (with no readable list of roles, no role
 * is called unknown).
 */
function crossReferenceProblems(policy: unknown): InputProblem[] {
  const problems: InputProblem[] = [];
  const root = asRecord(policy);
  if (!root) return problems;
  const roles = asRecord(root.roles);
  const definitions = Array.isArray(roles?.definitions) ? (roles.definitions as unknown[]) : undefined;
  const roleIds = definitions ? new Set<string>() : undefined;
  definitions?.forEach((role, i) => {
    const id = asRecord(role)?.id;
    if (typeof id !== 'string') return;
    if (roleIds!.has(id)) problems.push(problem('INV_ERR_POLICY_DUPLICATE', `$.roles.definitions[${i}].id`, `role ${JSON.stringify(id)} is defined twice`));
    roleIds!.add(id);
  });
  if (roleIds && typeof roles?.default === 'string' && !roleIds.has(roles.default)) problems.push(unknownRole('$.roles.default', roles.default));

  const clauses = asRecord(root.clauses);
  const checkClause = (path: string, id: unknown) => {
    if (clauses && typeof id === 'string' && !Object.prototype.hasOwnProperty.call(clauses, id)) {
      problems.push(problem('INV_ERR_POLICY_UNKNOWN_CLAUSE', path, `clause ${JSON.stringify(id)} is not defined in $.clauses`));
    }
  };

  for (const section of ROLE_SECTIONS) {
    const settings = asRecord(root[section]);
    if (!settings) continue;
    forEachClause(settings.default, `$.${section}.default`, checkClause);
    for (const [role, override] of Object.entries(asRecord(settings.roles) ?? {})) {
      if (roleIds && !roleIds.has(role)) problems.push(unknownRole(`$.${section}.roles.${role}`, role));
      forEachClause(override, `$.${section}.roles.${role}`, checkClause);
    }
  }
  checkClause('$.aup.clause', asRecord(root.aup)?.clause);
  checkClause('$.failsafe.clause', asRecord(root.failsafe)?.clause);

  const entryIds = new Set<string>();
  if (Array.isArray(root.usbAllowlist))
    (root.usbAllowlist as unknown[]).forEach((entry, i) => {
      const id = asRecord(entry)?.id;
      if (typeof id !== 'string') return;
      if (entryIds.has(id))
        problems.push(problem('INV_ERR_POLICY_DUPLICATE', `$.usbAllowlist[${i}].id`, `allowlist entry ${JSON.stringify(id)} is defined twice`));
      entryIds.add(id);
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
