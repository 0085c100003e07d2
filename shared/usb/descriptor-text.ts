/**
 * Strings a USB device says about itself (manufacturer, product, serial) are
 * chosen by whoever built the device, and a hostile one is built to break the
 * programs that show them. They are made safe once, where they are read:
 * invalid UTF-8 or UTF-16 becomes U+FFFD, control and formatting characters
 * (including bidirectional overrides that make text read backwards) go, runs
 * of spaces collapse, and the length is capped. What is left is plain text;
 * pages still render it as text, never as markup.
 */

/** A USB string descriptor holds at most 126 UTF-16 code units; sysfs and the OS tools never give more. */
export const DESCRIPTOR_TEXT_MAX = 126;

const utf8 = new TextDecoder('utf-8', { fatal: false });
const utf16le = new TextDecoder('utf-16le', { fatal: false });

// Controls (C0, C1, DEL), every format character (zero-width, bidi overrides, tags, BOM), private use,
// line and paragraph separators, and the noncharacters U+FFFE/U+FFFF.
export const UNSAFE = /[\p{Cc}\p{Cf}\p{Co}\p{Zl}\p{Zp}\ufffe\uffff]/gu;

/** Replaces unpaired surrogates, which some JS strings (from node-usb, say) carry, with U+FFFD. */
export function wellFormed(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
        continue;
      }
      out += '\ufffd';
    } else if (c >= 0xdc00 && c <= 0xdfff) out += '\ufffd';
    else out += s[i]!;
  }
  return out;
}

/** Caps by code points, so a cap never splits a surrogate pair. */
function capped(s: string, max: number): string {
  const points = Array.from(s);
  return points.length <= max ? s : points.slice(0, max).join('');
}

/** A descriptor string already in a JS string; `undefined` when nothing printable is left. */
export function descriptorText(raw: string | undefined | null, max = DESCRIPTOR_TEXT_MAX): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  const cleaned = wellFormed(capped(raw, max * 4))
    .replace(UNSAFE, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const result = capped(cleaned, max);
  return result.length > 0 ? result : undefined;
}

/** Bytes from sysfs or an OS tool, which should be UTF-8 and sometimes are not. */
export function descriptorTextFromUtf8(bytes: Uint8Array, max = DESCRIPTOR_TEXT_MAX): string | undefined {
  return descriptorText(utf8.decode(bytes.subarray(0, max * 8)), max);
}

/** A raw string descriptor's payload: UTF-16LE, possibly with an odd trailing byte or lone surrogates. */
export function descriptorTextFromUtf16le(bytes: Uint8Array, max = DESCRIPTOR_TEXT_MAX): string | undefined {
  return descriptorText(utf16le.decode(bytes.subarray(0, max * 4)), max);
}

/** Vendor and product ids as the protocol carries them: four lower-case hex digits, or undefined when not a 16-bit number. */
export function hex4(value: number | string | undefined | null): string | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'number' ? value : /^(0x)?[0-9a-fA-F]{1,4}$/.test(value.trim()) ? parseInt(value.trim().replace(/^0x/, ''), 16) : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 0xffff ? n.toString(16).padStart(4, '0') : undefined;
}
