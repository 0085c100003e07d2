/**
 * Where JSON text first goes wrong, for people fixing a file by hand: a line
 * and a column, and what was expected there. `JSON.parse` gives an offset only
 * on some Node versions, and quotes the surrounding text (which, in a
 * configuration file, may be a secret), so this scans the text itself. It is
 * called only after `JSON.parse` failed; it is iterative, so nesting cannot
 * hurt it, and linear in the text's length.
 */
export interface JsonErrorPosition {
  /** 1-based. */
  readonly line: number;
  /** 1-based, in characters (UTF-16 units). */
  readonly column: number;
  readonly problem: string;
}

export function jsonErrorPosition(text: string): JsonErrorPosition | undefined {
  const found = firstError(text);
  if (!found) return undefined;
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < found.offset; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: found.offset - lineStart + 1, problem: found.problem };
}

/** `line 4, column 3: expected a property name in double quotes, found "}"`, or the fallback when the text parses. */
export function describeJsonError(text: string, fallback: string): string {
  const at = jsonErrorPosition(text);
  return at ? `line ${at.line}, column ${at.column}: ${at.problem}` : fallback;
}

type Mode = 'value' | 'key' | 'after';

function firstError(text: string): { offset: number; problem: string } | undefined {
  const stack: Array<'{' | '['> = [];
  let i = 0;
  let mode: Mode = 'value';
  const fail = (offset: number, expected: string) => ({
    offset,
    problem: offset >= text.length ? `${expected}, found the end of the text` : `${expected}, found ${shown(text, offset)}`,
  });
  for (;;) {
    i = skipSpace(text, i);
    if (mode === 'key') {
      if (text[i] !== '"') return fail(i, 'expected a property name in double quotes');
      const end = scanString(text, i);
      if (typeof end !== 'number') return end;
      i = skipSpace(text, end);
      if (text[i] !== ':') return fail(i, "expected ':' after the property name");
      i++;
      mode = 'value';
      continue;
    }
    if (mode === 'value') {
      const c = text[i];
      if (c === '{' || c === '[') {
        i = skipSpace(text, i + 1);
        if (text[i] === (c === '{' ? '}' : ']')) {
          i++;
          mode = 'after';
        } else {
          stack.push(c);
          mode = c === '{' ? 'key' : 'value';
        }
        continue;
      }
      const end = c === '"' ? scanString(text, i) : c === '-' || isDigit(c) ? scanNumber(text, i) : scanLiteral(text, i);
      if (typeof end !== 'number') return end ?? fail(i, 'expected a value');
      i = end;
      mode = 'after';
      continue;
    }
    const top = stack[stack.length - 1];
    if (top === undefined) return i >= text.length ? undefined : fail(i, 'expected the end of the text after the value');
    const close = top === '{' ? '}' : ']';
    if (text[i] === ',') {
      i++;
      mode = top === '{' ? 'key' : 'value';
    } else if (text[i] === close) {
      i++;
      stack.pop();
    } else {
      return fail(i, `expected ',' or '${close}'`);
    }
  }
}

function shown(text: string, offset: number): string {
  const c = text.codePointAt(offset)!;
  return c < 0x20 ? `the control character U+${c.toString(16).padStart(4, '0').toUpperCase()}` : JSON.stringify(String.fromCodePoint(c));
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  return i;
}

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isHex = (c: string | undefined) => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/** The offset after the closing quote, or the error. */
function scanString(text: string, start: number): number | { offset: number; problem: string } {
  for (let i = start + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return { offset: i, problem: `a string holds ${shown(text, i)}; write it as an escape such as \\n` };
    if (code === 0x5c) {
      const next = text[i + 1];
      if (next === 'u') {
        for (let k = 2; k <= 5; k++) if (!isHex(text[i + k])) return { offset: i, problem: 'a \\u escape needs four hexadecimal digits' };
        i += 5;
      } else if (next !== undefined && '"\\/bfnrt'.includes(next)) {
        i++;
      } else {
        return { offset: i, problem: 'a backslash in a string starts an escape: \\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX' };
      }
    }
  }
  return { offset: start, problem: 'a string is not closed with a double quote' };
}

function scanNumber(text: string, start: number): number | { offset: number; problem: string } {
  let i = start;
  if (text[i] === '-') i++;
  if (text[i] === '0') i++;
  else if (isDigit(text[i])) while (isDigit(text[i])) i++;
  else return { offset: i, problem: 'a number needs a digit here' };
  if (text[i] === '.') {
    i++;
    if (!isDigit(text[i])) return { offset: i, problem: 'a number needs a digit after the decimal point' };
    while (isDigit(text[i])) i++;
  }
  if (text[i] === 'e' || text[i] === 'E') {
    i++;
    if (text[i] === '+' || text[i] === '-') i++;
    if (!isDigit(text[i])) return { offset: i, problem: 'a number needs a digit in its exponent' };
    while (isDigit(text[i])) i++;
  }
  return i;
}

/** true, false, null; undefined when nothing here could start a value. */
function scanLiteral(text: string, start: number): number | { offset: number; problem: string } | undefined {
  for (const word of ['true', 'false', 'null']) {
    if (text[start] !== word[0]) continue;
    for (let k = 1; k < word.length; k++) {
      if (text[start + k] !== word[k]) return { offset: start, problem: `expected a value (${word}?)` };
    }
    return start + word.length;
  }
  return undefined;
}
