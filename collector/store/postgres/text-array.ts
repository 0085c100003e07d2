const NEEDS_ESCAPE = /["\\]/;
const ESCAPED = /["\\]/g;

/**
 * A PostgreSQL text[] literal for a `$n::text[]` parameter. node-pg encodes
 * arrays itself, two regular-expression passes per element; a thousand-claim
 * burst sends sixteen arrays of a thousand, so one test per element here
 * saves the collector about a third of that work. Every element is quoted, so
 * commas, braces, spaces and the word NULL stay text; null is SQL NULL.
 */
export function textArray(values: ReadonlyArray<string | null | undefined>): string {
  return arrayLiteral(values, quoted);
}

const quoted = (v: string) => `"${NEEDS_ESCAPE.test(v) ? v.replace(ESCAPED, '\\$&') : v}"`;

/** `{a,NULL,b}`: each element as `element` writes it, null and undefined as NULL. */
function arrayLiteral<T>(values: ReadonlyArray<T | null | undefined>, element: (v: T) => string): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ',';
    out += v === null || v === undefined ? 'NULL' : element(v);
  }
  return `${out}}`;
}

/**
 * Text as an SQL constant written into a statement, for statements sent
 * several to a round trip (statement-chain.ts), which cannot carry
 * parameters. Dollar-quoted: nothing inside is an escape, whatever
 * `standard_conforming_strings` says, and the tag is one the text does not
 * contain. A NUL cannot be text in PostgreSQL and would end the statement
 * early on the wire, so it is refused here as PostgreSQL refuses it in a
 * parameter.
 */
export function sqlText(text: string): string {
  if (text.includes('\0')) throw new RangeError('text for PostgreSQL holds a NUL character');
  let tag = '$inv$';
  for (let n = 0; text.includes(tag) || text.endsWith(tag.slice(0, -1)); n++) tag = `$inv${n}$`;
  return `${tag}${text}${tag}`;
}

/** A text[] constant for a chained statement: textArray's literal, dollar-quoted and cast. */
export function sqlTextArray(values: ReadonlyArray<string | null | undefined>): string {
  return `${sqlText(textArray(values))}::text[]`;
}

/** An int[] constant for a chained statement; anything but a safe integer is refused, so only digits reach the text. */
export function sqlIntArray(values: ReadonlyArray<number | null | undefined>): string {
  return `'${arrayLiteral(values, integer)}'::int[]`;
}

function integer(v: number): string {
  if (!Number.isSafeInteger(v)) throw new RangeError(`not an integer for PostgreSQL: ${v}`);
  return String(v);
}
