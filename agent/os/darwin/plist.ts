import { InvigilatorError } from '../../../shared/errors';

/**
 * A small XML property-list reader for what `ioreg -a` and `diskutil -plist`
 * print. Those tools run as root and their output carries strings chosen by
 * whoever built a USB device, so the reader trusts nothing: no DTD, no entity
 * but the five XML ones and numeric references, bounded size and depth, and
 * dictionaries as Maps so that a `__proto__` key is only ever a key. Anything
 * it does not understand is INV_ERR_USB_OS_OUTPUT_INVALID, never a crash.
 */

export type PlistValue = string | number | bigint | boolean | Uint8Array | Date | PlistValue[] | PlistDict;
export type PlistDict = Map<string, PlistValue>;

export interface PlistLimits {
  /** In UTF-16 code units of the decoded text. */
  maxLength: number;
  /** Nesting of dict and array. */
  maxDepth: number;
}

/** IORegistry trees nest a USB stick's media some 15 objects deep (30 plist levels); 128 leaves room for hubs. */
export const DEFAULT_PLIST_LIMITS: PlistLimits = { maxLength: 16 * 1024 * 1024, maxDepth: 128 };

const NAMED_ENTITIES: ReadonlyMap<string, string> = new Map([
  ['lt', '<'],
  ['gt', '>'],
  ['amp', '&'],
  ['quot', '"'],
  ['apos', "'"],
]);

function invalid(detail: string): InvigilatorError {
  return new InvigilatorError('INV_ERR_USB_OS_OUTPUT_INVALID', `plist: ${detail}`);
}

interface Tag {
  name: string;
  closing: boolean;
  selfClosing: boolean;
}

class Reader {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly limits: PlistLimits,
  ) {}

  parse(): PlistValue {
    if (this.text.charCodeAt(0) === 0xfeff) this.pos = 1;
    this.skipProlog();
    const open = this.readTag();
    if (open.name !== 'plist' || open.closing) throw invalid('the document is not a plist');
    if (open.selfClosing) throw invalid('the plist is empty');
    const value = this.readValue(0);
    this.skipMisc();
    const close = this.readTag();
    if (close.name !== 'plist' || !close.closing) throw invalid('expected </plist>');
    this.skipMisc();
    if (this.pos !== this.text.length) throw invalid('content after </plist>');
    return value;
  }

  /** The XML declaration, comments and a DOCTYPE without an internal subset (which is where entities would be declared). */
  private skipProlog(): void {
    this.skipMisc();
    if (this.text.startsWith('<?xml', this.pos)) {
      const end = this.text.indexOf('?>', this.pos);
      if (end < 0) throw invalid('unterminated XML declaration');
      this.pos = end + 2;
    }
    this.skipMisc();
    if (this.text.startsWith('<!DOCTYPE', this.pos)) {
      const end = this.text.indexOf('>', this.pos);
      if (end < 0) throw invalid('unterminated DOCTYPE');
      if (this.text.slice(this.pos, end).includes('[')) throw invalid('a DOCTYPE with an internal subset is not allowed');
      this.pos = end + 1;
    }
    this.skipMisc();
  }

  private skipMisc(): void {
    for (;;) {
      while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
      if (!this.text.startsWith('<!--', this.pos)) return;
      const end = this.text.indexOf('-->', this.pos + 4);
      if (end < 0) throw invalid('unterminated comment');
      this.pos = end + 3;
    }
  }

  private readTag(): Tag {
    if (this.text[this.pos] !== '<') throw invalid(`expected a tag at offset ${this.pos}`);
    const end = this.text.indexOf('>', this.pos);
    if (end < 0) throw invalid('unterminated tag');
    const inner = this.text.slice(this.pos + 1, end);
    this.pos = end + 1;
    const m = /^(\/?)([A-Za-z]+)((?:\s+[A-Za-z]+="[^"<>]*")*)\s*(\/?)$/.exec(inner);
    if (!m) throw invalid('malformed tag');
    const [, slash, name, attributes, selfClose] = m;
    // Only <plist version="1.0"> carries an attribute in what Apple's tools write.
    if (attributes && name !== 'plist') throw invalid(`unexpected attributes on <${name}>`);
    if (slash && (selfClose || attributes)) throw invalid('malformed closing tag');
    return { name: name!, closing: slash === '/', selfClosing: selfClose === '/' };
  }

  private readValue(depth: number): PlistValue {
    this.skipMisc();
    const tag = this.readTag();
    if (tag.closing) throw invalid(`unexpected </${tag.name}>`);
    switch (tag.name) {
      case 'dict':
        return this.readDict(tag, depth + 1);
      case 'array':
        return this.readArray(tag, depth + 1);
      case 'string':
        return tag.selfClosing ? '' : this.readText('string');
      case 'integer':
        return parseInteger(this.leaf(tag));
      case 'real':
        return parseReal(this.leaf(tag));
      case 'true':
      case 'false':
        if (!tag.selfClosing && this.readText(tag.name) !== '') throw invalid(`<${tag.name}> has content`);
        return tag.name === 'true';
      case 'data':
        return parseData(tag.selfClosing ? '' : this.readText('data'));
      case 'date':
        return parseDate(this.leaf(tag));
      default:
        throw invalid(`unknown element <${tag.name}>`);
    }
  }

  private leaf(tag: Tag): string {
    if (tag.selfClosing) throw invalid(`<${tag.name}/> is empty`);
    return this.readText(tag.name).trim();
  }

  private readDict(tag: Tag, depth: number): PlistDict {
    if (depth > this.limits.maxDepth) throw invalid('nested too deeply');
    const dict: PlistDict = new Map();
    if (tag.selfClosing) return dict;
    for (;;) {
      this.skipMisc();
      const keyTag = this.readTag();
      if (keyTag.closing && keyTag.name === 'dict') return dict;
      if (keyTag.closing || keyTag.name !== 'key') throw invalid('expected <key> in <dict>');
      const key = keyTag.selfClosing ? '' : this.readText('key');
      if (dict.has(key)) throw invalid('a key appears twice in one dict');
      dict.set(key, this.readValue(depth));
    }
  }

  private readArray(tag: Tag, depth: number): PlistValue[] {
    if (depth > this.limits.maxDepth) throw invalid('nested too deeply');
    const array: PlistValue[] = [];
    if (tag.selfClosing) return array;
    for (;;) {
      this.skipMisc();
      if (this.text.startsWith('</array>', this.pos)) {
        this.pos += '</array>'.length;
        return array;
      }
      array.push(this.readValue(depth));
    }
  }

  /** Character data up to the matching close tag; no child elements, no CDATA. */
  private readText(name: string): string {
    const close = `</${name}>`;
    const end = this.text.indexOf('<', this.pos);
    if (end < 0 || !this.text.startsWith(close, end)) throw invalid(`expected ${close}`);
    const raw = this.text.slice(this.pos, end);
    this.pos = end + close.length;
    return decodeEntities(raw);
  }
}

function decodeEntities(raw: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&([^;&\s]{0,10});?/g, (whole, body: string) => {
    if (!whole.endsWith(';')) throw invalid('an unterminated entity reference');
    const named = NAMED_ENTITIES.get(body);
    if (named !== undefined) return named;
    const m = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(body);
    if (!m) throw invalid(`an unknown entity &${body};`);
    const code = m[1] !== undefined ? parseInt(m[1], 16) : parseInt(m[2]!, 10);
    if (code > 0x10ffff) throw invalid('a character reference out of range');
    // NUL and lone surrogates are let through on purpose: rejecting them would let one device's name blind the
    // listing of every device. Device strings are sanitised (descriptorText) where they are used.
    return String.fromCodePoint(code);
  });
}

function parseInteger(text: string): number | bigint {
  const m = /^([+-]?)(?:0x([0-9A-Fa-f]{1,32})|([0-9]{1,40}))$/.exec(text);
  if (!m) throw invalid('a malformed <integer>');
  const magnitude = m[2] !== undefined ? BigInt(`0x${m[2]}`) : BigInt(m[3]!);
  const value = m[1] === '-' ? -magnitude : magnitude;
  // IORegistry ids and session ids can pass 2^53; keep them exact rather than rounded.
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

function parseReal(text: string): number {
  if (/^[+-]?(nan|inf|infinity)$/i.test(text)) return /nan/i.test(text) ? NaN : text.startsWith('-') ? -Infinity : Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?$/.test(text) || text.length > 64) throw invalid('a malformed <real>');
  return Number(text);
}

function parseData(text: string): Uint8Array {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) throw invalid('malformed <data>');
  return new Uint8Array(Buffer.from(compact, 'base64'));
}

function parseDate(text: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/.exec(text);
  const date = m ? new Date(text) : undefined;
  if (!date || Number.isNaN(date.getTime())) throw invalid('a malformed <date>');
  return date;
}

/** Parses an XML plist; throws INV_ERR_USB_OS_OUTPUT_INVALID on anything malformed or over the limits. */
export function parsePlist(text: string, limits: PlistLimits = DEFAULT_PLIST_LIMITS): PlistValue {
  if (typeof text !== 'string') throw invalid('not text');
  if (text.length > limits.maxLength) throw invalid('larger than allowed');
  try {
    return new Reader(text, limits).parse();
  } catch (e) {
    if (e instanceof InvigilatorError) throw e;
    // A RangeError from a pathological input is still the tool's output being wrong, not ours.
    throw invalid(e instanceof Error ? e.name : 'unreadable');
  }
}

export function isDict(value: PlistValue | undefined): value is PlistDict {
  return value instanceof Map;
}

/** Reads a dict root, as `diskutil -plist` prints. */
export function parsePlistDict(text: string, limits?: PlistLimits): PlistDict {
  const value = parsePlist(text, limits);
  if (!isDict(value)) throw invalid('expected a <dict> at the root');
  return value;
}

export function str(dict: PlistDict, key: string): string | undefined {
  const v = dict.get(key);
  return typeof v === 'string' ? v : undefined;
}

/** A non-negative integer that fits a JS number exactly. */
export function int(dict: PlistDict, key: string): number | undefined {
  const v = dict.get(key);
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

export function bool(dict: PlistDict, key: string): boolean | undefined {
  const v = dict.get(key);
  return typeof v === 'boolean' ? v : undefined;
}

export function dicts(dict: PlistDict, key: string): PlistDict[] {
  const v = dict.get(key);
  return Array.isArray(v) ? v.filter(isDict) : [];
}
