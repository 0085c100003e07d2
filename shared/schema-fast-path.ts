import type { z } from 'zod';
import type { Decoded } from './errors';
import { validate } from './schema';

/**
 * A quicker way through the schemas for the messages that are almost always
 * valid, above all `event.batch` (issue 12 item 8: zod took a sixth of the
 * collector's time per event). `fastParser(schema)` walks the zod schema once
 * and builds plain functions that check the same things zod checks and build
 * the same output zod builds: new objects with the shape's keys in the shape's
 * order, strings passed through the same `overwrite` cleaners. For a value it
 * cannot vouch for (anything invalid, anything unusual) it returns UNSURE and
 * the caller asks zod, so every error, with its code, path and message, is
 * zod's own. Only what it has been taught is compiled (listed in `checkFor`
 * and `build`); any other schema or check, or an unfamiliar variant of a known
 * one, is handed to zod's own safeParse for that part of the value.
 *
 * It is exact for values JSON.parse makes, which is all it is given: it
 * accepts a value only where zod accepts it, with a deep-equal output in the
 * same key order (test/shared/schema-fast-path.test.ts compares the two on
 * thousands of mutated frames). Unlike zod it copies only what differs: an
 * object or array whose contents come out unchanged, keys in the shape's
 * order, is returned as it was given. So give it a value nobody else will
 * change, as the codec does with the value it has just parsed.
 */
export const UNSURE: unique symbol = Symbol('unsure');
export type Unsure = typeof UNSURE;

type Fast = (value: unknown) => unknown;

/** The parts of zod's internals this reads. */
interface Node {
  _zod: {
    def: Def;
    traits: Set<string>;
    optin?: 'optional' | 'defaulted';
    optout?: 'optional';
    values?: Set<unknown>;
    propValues?: Record<string, Set<unknown>>;
  };
}
interface Def {
  type: string;
  checks?: readonly Node[];
  coerce?: boolean;
  // Checks.
  check?: string;
  format?: string;
  pattern?: RegExp;
  minimum?: number;
  maximum?: number;
  value?: unknown;
  inclusive?: boolean;
  tx?: (value: unknown) => unknown;
  // Wrappers and containers.
  innerType?: Node;
  element?: Node;
  shape?: Record<string, Node>;
  catchall?: Node;
  options?: readonly Node[];
  discriminator?: string;
  unionFallback?: boolean;
}

interface Compiled {
  fn: Fast;
  /** Whatever it accepts comes back as the very same value: no copy, no cleaning. */
  identity: boolean;
}

/** A parser that gives zod's output for `schema` where it can vouch for the value, and UNSURE everywhere else. */
export function fastParser<S extends z.ZodType>(schema: S): (value: unknown) => z.output<S> | Unsure {
  return compile(schema as unknown as Node).fn as (value: unknown) => z.output<S> | Unsure;
}

/** `validate(schema, value)` (shared/schema.ts), the same result, sooner for a value the fast path vouches for. */
export function fastValidator<S extends z.ZodType>(schema: S): (value: unknown) => Decoded<z.output<S>> {
  const fast = fastParser(schema);
  return (value) => {
    const quick = fast(value);
    return quick === UNSURE ? validate(schema, value) : { ok: true, value: quick };
  };
}

const compiled = new WeakMap<Node, Compiled>();
const compiling = new Set<Node>();

function compile(schema: Node): Compiled {
  const done = compiled.get(schema);
  if (done) return done;
  // A schema that contains itself (through a getter in its shape): call whatever it compiles to, once it has.
  if (compiling.has(schema)) return { fn: (v) => compiled.get(schema)!.fn(v), identity: false };
  compiling.add(schema);
  try {
    const result = build(schema) ?? { fn: byZod(schema), identity: false };
    compiled.set(schema, result);
    return result;
  } finally {
    compiling.delete(schema);
  }
}

/** The part of the value zod alone understands: its own parse, which cannot differ from itself. */
function byZod(schema: Node): Fast {
  const s = schema as unknown as z.ZodType;
  return (v) => {
    const r = s.safeParse(v);
    return r.success ? r.data : UNSURE;
  };
}

function build(schema: Node): Compiled | undefined {
  const { def, traits } = schema._zod;
  if (def.coerce) return undefined;
  // zod parses, then runs the checks in order (a format such as uuid is a check on itself, first).
  const checks: Check[] = [];
  for (const ch of traits.has('$ZodCheck') ? [schema, ...(def.checks ?? [])] : (def.checks ?? [])) {
    const c = checkFor(ch);
    if (!c) return undefined;
    checks.push(c);
  }
  const base = baseFor(schema);
  if (!base) return undefined;
  const cleans = checks.some((c) => c.kind === 'overwrite');
  return { fn: fused(def.type, checks) ?? withChecks(base.fn, checks.map(asFast)), identity: base.identity && !cleans };
}

/** A check as zod's definition says it: tests that leave the value as it is, and `overwrite`, which replaces it. */
type Check =
  | { kind: 'min_length'; n: number }
  | { kind: 'max_length'; n: number }
  | { kind: 'pattern'; re: RegExp }
  | { kind: 'safeint' }
  | { kind: 'bound'; above: boolean; inclusive: boolean; value: number }
  | { kind: 'overwrite'; tx: (value: unknown) => unknown };

function withChecks(base: Fast, checks: readonly Fast[]): Fast {
  if (checks.length === 0) return base;
  return (v) => {
    let x = base(v);
    for (let i = 0; i < checks.length && x !== UNSURE; i++) x = checks[i]!(x);
    return x;
  };
}

/**
 * The usual string or number: its type and every test in one function, then at most one `overwrite`
 * (a cleaner), last. Tests that all see the same value may run in any order; a test after an
 * overwrite would see the cleaned value, so that case is left to withChecks.
 */
function fused(type: string, checks: readonly Check[]): Fast | undefined {
  const last = checks[checks.length - 1];
  const tx = last?.kind === 'overwrite' ? last.tx : undefined;
  const tests = tx ? checks.slice(0, -1) : checks;
  let test: ((v: unknown) => boolean) | undefined;
  if (type === 'string' && tests.every((c) => c.kind === 'min_length' || c.kind === 'max_length' || c.kind === 'pattern')) {
    let min = 0;
    let max = Infinity;
    const patterns: RegExp[] = [];
    for (const c of tests) {
      if (c.kind === 'min_length') min = Math.max(min, c.n);
      else if (c.kind === 'max_length') max = Math.min(max, c.n);
      else if (c.kind === 'pattern') patterns.push(c.re);
    }
    test = (v) => {
      if (typeof v !== 'string') return false;
      const n = v.length;
      // zod counts a string's code points, not its UTF-16 units: only a length in doubt is counted.
      if (n > max && codePoints(v) > max) return false;
      if (n < 2 * min && (n < min || codePoints(v) < min)) return false;
      for (let i = 0; i < patterns.length; i++) {
        const re = patterns[i]!;
        re.lastIndex = 0;
        if (!re.test(v)) return false;
      }
      return true;
    };
  } else if (type === 'number' && tests.every((c) => c.kind === 'safeint' || c.kind === 'bound')) {
    const int = tests.some((c) => c.kind === 'safeint');
    const bounds = tests.filter((c): c is Extract<Check, { kind: 'bound' }> => c.kind === 'bound');
    test = (v) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || (int && !Number.isSafeInteger(v))) return false;
      for (let i = 0; i < bounds.length; i++) {
        const { above, inclusive, value } = bounds[i]!;
        if (!(above ? (inclusive ? v >= value : v > value) : inclusive ? v <= value : v < value)) return false;
      }
      return true;
    };
  }
  if (!test) return undefined;
  const pass = test;
  return tx ? (v) => (pass(v) ? tx(v) : UNSURE) : (v) => (pass(v) ? v : UNSURE);
}

/** One check alone, for whatever fused() does not take (an array's length, a test after a cleaner). */
function asFast(c: Check): Fast {
  switch (c.kind) {
    case 'max_length': {
      const max = c.n;
      return (v) => (typeof v === 'string' ? (v.length <= max || codePoints(v) <= max ? v : UNSURE) : Array.isArray(v) && v.length <= max ? v : UNSURE);
    }
    case 'min_length': {
      const min = c.n;
      return (v) =>
        typeof v === 'string'
          ? v.length >= 2 * min || (v.length >= min && codePoints(v) >= min)
            ? v
            : UNSURE
          : Array.isArray(v) && v.length >= min
            ? v
            : UNSURE;
    }
    case 'pattern': {
      const re = c.re;
      return (v) => {
        if (typeof v !== 'string') return UNSURE;
        re.lastIndex = 0;
        return re.test(v) ? v : UNSURE;
      };
    }
    case 'safeint':
      return (v) => (typeof v === 'number' && Number.isSafeInteger(v) ? v : UNSURE);
    case 'bound': {
      const { above, inclusive, value } = c;
      return (v) => (typeof v === 'number' && (above ? (inclusive ? v >= value : v > value) : inclusive ? v <= value : v < value) ? v : UNSURE);
    }
    case 'overwrite':
      return c.tx;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Formats whose check is their pattern alone (zod's $ZodCheckStringFormat); others (url, email's kin with code) go to zod. */
const PATTERN_FORMATS = ['$ZodCheckRegex', '$ZodUUID', '$ZodGUID', '$ZodISODateTime', '$ZodISODate'];

/** What zod's check does, if it is one this knows; a check of any other kind, or an unfamiliar variant, leaves the schema to zod. */
function checkFor(ch: Node): Check | undefined {
  const { def, traits } = ch._zod;
  switch (def.check) {
    case 'max_length':
      return traits.has('$ZodCheckMaxLength') && typeof def.maximum === 'number' ? { kind: 'max_length', n: def.maximum } : undefined;
    case 'min_length':
      return traits.has('$ZodCheckMinLength') && typeof def.minimum === 'number' ? { kind: 'min_length', n: def.minimum } : undefined;
    case 'string_format':
      return def.pattern instanceof RegExp && PATTERN_FORMATS.some((t) => traits.has(t)) ? { kind: 'pattern', re: def.pattern } : undefined;
    case 'number_format':
      // `.int()`: a safe integer. Other formats (int32, float32, …) go to zod.
      return traits.has('$ZodCheckNumberFormat') && def.format === 'safeint' ? { kind: 'safeint' } : undefined;
    case 'greater_than':
    case 'less_than': {
      const above = def.check === 'greater_than';
      if (!traits.has(above ? '$ZodCheckGreaterThan' : '$ZodCheckLessThan') || typeof def.value !== 'number') return undefined;
      return { kind: 'bound', above, inclusive: def.inclusive === true, value: def.value };
    }
    case 'overwrite':
      return traits.has('$ZodCheckOverwrite') && typeof def.tx === 'function' ? { kind: 'overwrite', tx: def.tx } : undefined;
    case undefined:
    default:
      return undefined;
  }
}

/** zod's own count (util.codePointLength): a high surrogate followed by a low one is one code point. */
function codePoints(s: string): number {
  let count = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if ((s.charCodeAt(i) & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      count--;
      i++;
    }
  }
  return count;
}

function baseFor(schema: Node): Compiled | undefined {
  const { def, traits } = schema._zod;
  switch (def.type) {
    case 'string':
      return traits.has('$ZodString') ? { fn: (v) => (typeof v === 'string' ? v : UNSURE), identity: true } : undefined;
    case 'number':
      return traits.has('$ZodNumber') ? { fn: (v) => (typeof v === 'number' && Number.isFinite(v) ? v : UNSURE), identity: true } : undefined;
    case 'boolean':
      return traits.has('$ZodBoolean') ? { fn: (v) => (typeof v === 'boolean' ? v : UNSURE), identity: true } : undefined;
    case 'literal':
    case 'enum': {
      const values = schema._zod.values;
      if (!values || !(traits.has('$ZodLiteral') || traits.has('$ZodEnum'))) return undefined;
      return { fn: (v) => (values.has(v) ? v : UNSURE), identity: true };
    }
    case 'optional': {
      const inner = def.innerType;
      // `.exactOptional()` and an inner default behave otherwise on absence: zod's.
      if (!inner || !traits.has('$ZodOptional') || traits.has('$ZodExactOptional') || inner._zod.optin === 'defaulted') return undefined;
      const { fn, identity } = compile(inner);
      return { fn: (v) => (v === undefined ? undefined : fn(v)), identity };
    }
    case 'array':
      return def.element && traits.has('$ZodArray') ? arrayOf(compile(def.element).fn) : undefined;
    case 'object':
      return traits.has('$ZodObject') ? objectOf(def) : undefined;
    case 'union':
      if (traits.has('$ZodDiscriminatedUnion')) return discriminatedUnionOf(def);
      return traits.has('$ZodUnion') && !traits.has('$ZodXor') ? unionOf(def) : undefined;
    default:
      return undefined;
  }
}

function arrayOf(element: Fast): Compiled {
  return {
    fn: (v) => {
      if (!Array.isArray(v)) return UNSURE;
      let out: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        const y = element(x);
        if (y === UNSURE) return UNSURE;
        if (out === undefined) {
          if (y === x) continue;
          out = v.slice(0, i);
        }
        out.push(y);
      }
      return out ?? v;
    },
    identity: false,
  };
}

/** A strict object (unknown keys refused) or a stripping one (unknown keys dropped); a loose or catch-all one is zod's. */
function objectOf(def: Def): Compiled | undefined {
  const shape = def.shape;
  if (!shape || Object.getOwnPropertySymbols(shape).length > 0) return undefined;
  const catchall = def.catchall;
  const strict = catchall !== undefined;
  if (strict && !catchall._zod.traits.has('$ZodNever')) return undefined;
  const keys = Object.keys(shape);
  // zod reads `key in input` and `input[key]`: a key an object inherits would be seen on every object.
  if (keys.some((k) => k in Object.prototype || k === '__proto__')) return undefined;
  const required: boolean[] = [];
  for (const k of keys) {
    const { optin, optout } = shape[k]!._zod;
    if (optin === undefined && optout === undefined) required.push(true);
    else if (optin === 'optional' && optout === 'optional') required.push(false);
    else return undefined;
  }
  const fns = keys.map((k) => compile(shape[k]!).fn);
  const n = keys.length;
  return {
    fn: (v) => {
      if (!isObject(v)) return UNSURE;
      // The input's keys in the shape's order, none unknown: the output has these keys in this order, so if nothing
      // below changes it can be the input itself. Else a new object in the shape's order, as zod makes.
      let inOrder = true;
      let given = 0;
      let j = 0;
      for (const key in v) {
        given++;
        if (inOrder) {
          while (j < n && keys[j] !== key) j++;
          if (j === n) inOrder = false;
          else j++;
        }
      }
      let found = 0;
      let out: Record<string, unknown> | undefined = inOrder ? undefined : {};
      for (let i = 0; i < n; i++) {
        const k = keys[i]!;
        const x = v[k];
        if (x === undefined) {
          // Absent and optional: no key in the output, as zod leaves it. Present as undefined: not JSON, zod's.
          if (required[i] || k in v) return UNSURE;
          continue;
        }
        found++;
        const y = fns[i]!(x);
        if (y === UNSURE) return UNSURE;
        if (out === undefined) {
          if (y === x) continue;
          // The first value that changes (a cleaned string): copy what came before, unchanged.
          out = {};
          for (let p = 0; p < i; p++) if (v[keys[p]!] !== undefined) out[keys[p]!] = v[keys[p]!];
        }
        out[k] = y;
      }
      // A JSON object's keys are its own, each with a value: more of them than the shape found is an unknown key.
      if (strict && given !== found) return UNSURE;
      return out ?? v;
    },
    identity: false,
  };
}

/** zod takes the first option that accepts; with options that return their input unchanged, any accepting one gives the same. */
function unionOf(def: Def): Compiled | undefined {
  const options = (def.options ?? []).map(compile);
  if (options.length === 0 || !options.every((o) => o.identity)) return undefined;
  const fns = options.map((o) => o.fn);
  return {
    fn: (v) => {
      for (const fn of fns) if (fn(v) !== UNSURE) return v;
      return UNSURE;
    },
    identity: true,
  };
}

/** The option the discriminator's value names, as zod finds it (its discriminatorMap); no fallback to trying each. */
function discriminatedUnionOf(def: Def): Compiled | undefined {
  const key = def.discriminator;
  if (typeof key !== 'string' || def.unionFallback || !def.options) return undefined;
  const byValue = new Map<unknown, Fast | null>();
  for (const option of def.options) {
    const values = option._zod.propValues?.[key];
    if (!values || values.size === 0) return undefined;
    for (const value of values) {
      if (!byValue.has(value)) byValue.set(value, compile(option).fn);
      else if (value === undefined) byValue.set(value, null);
      else return undefined;
    }
  }
  return {
    fn: (v) => {
      if (!isObject(v)) return UNSURE;
      const option = byValue.get(v[key]);
      return option ? option(v) : UNSURE;
    },
    identity: false,
  };
}
