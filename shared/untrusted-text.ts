import { UNSAFE, descriptorText, wellFormed } from './usb/descriptor-text';

/**
 * Text that people and devices choose (hostnames, user names, labels,
 * reasons, problem reports) is cleaned once, where it crosses a boundary: the
 * protocol's `name` and `text` primitives apply these, so every message the
 * agent, the tray or the collector decodes carries plain text, and what the
 * collector stores and serves is plain text too. The rules are the USB
 * strings' (shared/usb/descriptor-text.ts): unpaired surrogates become
 * U+FFFD; control, format (bidirectional overrides and isolates, zero-width
 * characters), private-use and noncharacter code points become a space.
 * Cleaning never lengthens a string and cleaning twice changes nothing more.
 */

/** A name, on one line: also runs of white space become one space, and none is left at either end. */
export function cleanName(raw: string): string {
  // Already plain (printable ASCII words, single spaces): the usual case, kept as it is. One way to match, so no backtracking blow-up.
  if (raw === '' || /^[\x21-\x7e]+(?: [\x21-\x7e]+)*$/.test(raw)) return raw;
  return descriptorText(raw, raw.length) ?? '';
}

/** Every unsafe character but the line break and the tab, which free text keeps. */
const UNSAFE_IN_TEXT = new RegExp(`(?![\\n\\t])${UNSAFE.source}`, 'gu');

/**
 * Free text keeps its lines and its spacing: line endings (CR LF, CR, and the
 * Unicode line and paragraph separators) become `\n`, tabs stay; everything
 * else unsafe becomes a space.
 */
export function cleanText(raw: string): string {
  if (/^[\x20-\x7e\n\t]*$/.test(raw)) return raw;
  return wellFormed(raw)
    .replace(/\r\n?|[\u2028\u2029]/g, '\n')
    .replace(UNSAFE_IN_TEXT, ' ');
}
