/**
 * Text into PowerShell source and JSON out of it, for every adapter that
 * speaks to Windows through the PowerShell session.
 */

/**
 * A single-quoted PowerShell string literal. Inside single quotes PowerShell
 * expands nothing; the only way out is a quote character, and PowerShell
 * treats the typographic single quotes (U+2018 to U+201B) as quotes too, so
 * each of them is doubled like the ASCII one.
 */
export function psQuote(value: string): string {
  return `'${value.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

/**
 * ConvertTo-Json's shapes for "a list": nothing (null), one object on its own
 * (a pipeline of one is not wrapped), an array, or, in Windows PowerShell 5.1
 * when an array object is piped whole, `{ "value": [...], "Count": n }`.
 */
export function asList(value: unknown): unknown[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value;
  if (typeof value === 'object') {
    const wrapped = value as { value?: unknown; Count?: unknown };
    if (Array.isArray(wrapped.value) && typeof wrapped.Count === 'number') return wrapped.value as unknown[];
  }
  return [value];
}
