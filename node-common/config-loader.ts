import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { type Decoded, type InputProblem, problem } from '../shared/errors';
import { describeJsonError } from '../shared/json-error-position';
import { validate } from '../shared/schema';
import { joinPath, parseUntrustedJson } from '../shared/untrusted-json';

/** Maps an environment variable to a field of the configuration, with how to read its text. */
export interface EnvBinding {
  readonly variable: string;
  readonly path: readonly string[];
  readonly parse?: (raw: string) => unknown;
}

export interface LoadConfigOptions {
  file?: string;
  env: NodeJS.ProcessEnv;
  bindings: readonly EnvBinding[];
  /** Values from the command line: they win over the environment, which wins over the file. */
  overrides?: Record<string, unknown>;
}

/**
 * Configuration from a file, the environment and the command line, merged in
 * that order and validated as a whole. A mistake names its field (and, for the
 * environment, its variable); it is never a stack trace.
 */
export function loadConfig<S extends z.ZodType>(schema: S, options: LoadConfigOptions): Decoded<z.output<S>> {
  let fromFile: Record<string, unknown> = {};
  if (options.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (e) {
      return { ok: false, problems: [problem('INV_ERR_CONFIG_UNREADABLE', '$', `${options.file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)] };
    }
    const parsed = parseUntrustedJson(text);
    if (!parsed.ok) return { ok: false, problems: parsed.problems.map((p) => ({ ...p, message: `${options.file}: ${located(p, text)}` })) };
    if (parsed.value === null || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
      return { ok: false, problems: [problem('INV_ERR_CONFIG_INVALID', '$', `${options.file}: a configuration file holds one JSON object`)] };
    }
    fromFile = parsed.value as Record<string, unknown>;
  }

  const merged = structuredClone(fromFile);
  const sources = new Map<string, string>();
  for (const binding of options.bindings) {
    const raw = options.env[binding.variable];
    if (raw === undefined || raw === '') continue;
    setPath(merged, binding.path, binding.parse ? binding.parse(raw) : raw);
    sources.set(binding.path.reduce<string>(joinPath, '$'), binding.variable);
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) if (value !== undefined) setPath(merged, key.split('.'), value);

  const result = validate(schema, merged);
  if (result.ok) return result;
  return { ok: false, problems: result.problems.map((p) => withSource(p, sources)) };
}

/** A syntax error in a file someone edits by hand says at which line and column. */
export function located(p: InputProblem, text: string): string {
  return p.code === 'INV_ERR_INVALID_JSON' ? describeJsonError(text, p.message) : p.message;
}

function withSource(p: InputProblem, sources: Map<string, string>): InputProblem {
  const variable = sources.get(p.path);
  return { ...p, code: 'INV_ERR_CONFIG_INVALID', message: variable ? `${p.message} (from ${variable})` : p.message };
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  path.slice(0, -1).forEach((key) => {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  });
  node[path[path.length - 1]!] = value;
}

/** Reads a whole number from the environment, leaving anything else for the schema to reject with the field's name. */
export const asInteger = (raw: string): unknown => (/^-?\d+$/.test(raw.trim()) ? Number(raw) : raw);
export const asBoolean = (raw: string): unknown => (/^(1|true|yes)$/i.test(raw) ? true : /^(0|false|no)$/i.test(raw) ? false : raw);
