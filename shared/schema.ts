import type { z } from 'zod';
import { type Decoded, type ErrorCode, type InputProblem, problem } from './errors';
import { DEFAULT_JSON_LIMITS, type JsonLimits, joinPath, parseUntrustedJson } from './untrusted-json';

/**
 * The bridge between the schema library and the error catalogue: every schema
 * failure becomes one coded problem per mistake, located by a JSON path.
 */
export function validate<S extends z.ZodType>(schema: S, value: unknown): Decoded<z.output<S>> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: issuesToProblems(result.error.issues) };
}

/** Parse untrusted text or bytes, then validate: the whole boundary in one call. */
export function decodeUntrusted<S extends z.ZodType>(schema: S, input: string | Uint8Array, limits: JsonLimits = DEFAULT_JSON_LIMITS): Decoded<z.output<S>> {
  const parsed = parseUntrustedJson(input, limits);
  if (!parsed.ok) return parsed;
  return validate(schema, parsed.value);
}

export function issuesToProblems(issues: readonly z.core.$ZodIssue[]): InputProblem[] {
  const out: InputProblem[] = [];
  for (const issue of issues) {
    const path = issue.path.reduce<string>((p, k) => joinPath(p, typeof k === 'symbol' ? String(k) : k), '$');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(problem('INV_ERR_SCHEMA_UNKNOWN_FIELD', joinPath(path, key), `unknown field ${JSON.stringify(key)}`));
      continue;
    }
    out.push(problem(codeFor(issue), path, issue.message));
  }
  return out;
}

function codeFor(issue: z.core.$ZodIssue): ErrorCode {
  switch (issue.code) {
    case 'invalid_type':
      return 'input' in issue && issue.input !== undefined ? 'INV_ERR_SCHEMA_TYPE' : 'INV_ERR_SCHEMA_REQUIRED';
    case 'invalid_value':
    case 'invalid_union':
    case 'invalid_key':
      return 'INV_ERR_SCHEMA_VALUE';
    case 'too_big':
    case 'too_small':
    case 'not_multiple_of':
      return 'INV_ERR_SCHEMA_RANGE';
    case 'invalid_format':
      return 'INV_ERR_SCHEMA_FORMAT';
    case 'unrecognized_keys':
      return 'INV_ERR_SCHEMA_UNKNOWN_FIELD';
    case 'invalid_element':
    case 'custom':
      return 'INV_ERR_SCHEMA_INVALID';
    default:
      return assertNever(issue);
  }
}

export function assertNever(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
