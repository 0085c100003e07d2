import { type Decoded, failure, problem } from './errors';

/**
 * Limits applied to every piece of untrusted JSON before a schema sees it.
 * The schema libraries recurse, so depth must be bounded before parsing, and a
 * size cap must hold before any work proportional to the input is done.
 */
export interface JsonLimits {
  /** Largest input accepted, in bytes for byte input and UTF-16 units for strings. */
  readonly maxBytes: number;
  /** Deepest nesting of arrays and objects accepted. */
  readonly maxDepth: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = { maxBytes: 1024 * 1024, maxDepth: 32 };

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Turns untrusted bytes or text into a plain JSON value, or says why not.
 * Never throws: every failure is a coded problem.
 */
export function parseUntrustedJson(input: string | Uint8Array, limits: JsonLimits = DEFAULT_JSON_LIMITS): Decoded<unknown> {
  let text: string;
  if (typeof input === 'string') {
    if (input.length > limits.maxBytes) return failure(problem('INV_ERR_INPUT_TOO_LARGE', '$', `more than ${limits.maxBytes} characters`));
    if (hasLoneSurrogate(input)) return failure(problem('INV_ERR_INVALID_UTF8', '$', 'the text contains an unpaired surrogate'));
    text = input;
  } else {
    if (input.byteLength > limits.maxBytes) return failure(problem('INV_ERR_INPUT_TOO_LARGE', '$', `more than ${limits.maxBytes} bytes`));
    try {
      text = utf8.decode(input);
    } catch {
      return failure(problem('INV_ERR_INVALID_UTF8'));
    }
  }
  // Bytes that decode without error hold no unpaired surrogate: UTF-8 cannot encode one.

  // V8's JSON.parse is iterative, so even absurd nesting cannot overflow the stack here;
  // the depth limit protects everything that walks the value afterwards.
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return failure(problem('INV_ERR_INVALID_JSON', '$', e instanceof Error ? e.message : undefined));
  }
  const shape = inspect(value, limits.maxDepth);
  if (shape === 'too-deep') return failure(problem('INV_ERR_TOO_DEEP', '$', `nested deeper than ${limits.maxDepth}`));
  // JSON.parse makes "__proto__" an own property, harmless until some later
  // code spreads or merges the object; refusing it here keeps every consumer safe.
  if (shape === 'forbidden-key') {
    const found = findForbiddenKey(value, '$') ?? '$';
    return failure(problem('INV_ERR_FORBIDDEN_KEY', found, `key ${JSON.stringify(found.slice(found.lastIndexOf('.') + 1))} is not allowed`));
  }
  // JSON escapes (\ud800) can still produce lone surrogates inside strings.
  if (text.includes('\\u')) {
    const bad = findLoneSurrogateString(value, '$');
    if (bad) return failure(problem('INV_ERR_INVALID_UTF8', bad, 'a string contains an unpaired surrogate'));
  }
  return { ok: true, value };
}

/**
 * One iterative pass over a parsed value: is it nested deeper than allowed,
 * and does any object have a forbidden key? Iterative, so depth cannot hurt it;
 * it stops at the first finding. (The recursive helpers below run only after
 * this has bounded the depth, to say where.)
 */
function inspect(root: unknown, maxDepth: number): 'ok' | 'too-deep' | 'forbidden-key' {
  if (root === null || typeof root !== 'object') return 'ok';
  // Two stacks side by side rather than one of [node, depth] pairs: a pair per node was most of this pass's garbage.
  const nodes: object[] = [root];
  const depths: number[] = [1];
  while (nodes.length > 0) {
    const node = nodes.pop()!;
    const depth = depths.pop()!;
    if (depth > maxDepth) return 'too-deep';
    if (Array.isArray(node)) {
      for (const child of node) {
        if (child !== null && typeof child === 'object') {
          nodes.push(child as object);
          depths.push(depth + 1);
        }
      }
    } else {
      for (const key in node) {
        if (FORBIDDEN_KEYS.has(key)) return 'forbidden-key';
        const child = (node as Record<string, unknown>)[key];
        if (child !== null && typeof child === 'object') {
          nodes.push(child);
          depths.push(depth + 1);
        }
      }
    }
  }
  return 'ok';
}

function findForbiddenKey(value: unknown, path: string): string | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findForbiddenKey(value[i], `${path}[${i}]`);
      if (found) return found;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      const child = joinPath(path, key);
      if (FORBIDDEN_KEYS.has(key)) return child;
      const found = findForbiddenKey((value as Record<string, unknown>)[key], child);
      if (found) return found;
    }
  }
  return undefined;
}

function findLoneSurrogateString(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return hasLoneSurrogate(value) ? path : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findLoneSurrogateString(value[i], `${path}[${i}]`);
      if (found) return found;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const childPath = joinPath(path, key);
      if (hasLoneSurrogate(key)) return childPath;
      const found = findLoneSurrogateString(child, childPath);
      if (found) return found;
    }
  }
  return undefined;
}

export function hasLoneSurrogate(text: string): boolean {
  return /(?:[\ud800-\udbff](?![\udc00-\udfff]))|(?:(?<![\ud800-\udbff])[\udc00-\udfff])/.test(text);
}

/** `$.a.b`, or `$["odd key"]` when the key is not a plain identifier. */
export function joinPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}
