import { readFileSync } from 'node:fs';
import path from 'node:path';
import { InvigilatorError } from '../../../../shared/errors';
import { type PlistDict, parsePlist, parsePlistDict } from '../../../../agent/os/darwin/plist';

/*
 * The plist reader macOS adapters share (ioreg and diskutil for USB, app
 * bundles' Info.plist for the inventory), with well-formed and hostile input.
 */

const FIXTURES = path.join(__dirname, '../../../fixtures/usb/darwin');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

const HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n';
const doc = (body: string) => `${HEADER}<plist version="1.0">\n${body}\n</plist>\n`;

describe('parsePlist', () => {
  it('reads every value type Apple tools write', () => {
    const value = parsePlistDict(
      doc(`<dict>
        <key>s</key><string>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#65;&#x42;</string>
        <key>empty</key><string/>
        <key>i</key><integer>-42</integer>
        <key>big</key><integer>18446744073610133504</integer>
        <key>hex</key><integer>0x10</integer>
        <key>r</key><real>3.5e2</real>
        <key>t</key><true/>
        <key>f</key><false/>
        <key>d</key><data>
          aGVs
          bG8=
        </data>
        <key>when</key><date>2014-10-26T14:03:27Z</date>
        <key>a</key><array><integer>1</integer><dict/><array/></array>
        <!-- a comment -->
      </dict>`),
    );
    expect(value.get('s')).toBe('a <b> & "c" \'d\' AB');
    expect(value.get('empty')).toBe('');
    expect(value.get('i')).toBe(-42);
    expect(value.get('big')).toBe(18446744073610133504n);
    expect(value.get('hex')).toBe(16);
    expect(value.get('r')).toBe(350);
    expect(value.get('t')).toBe(true);
    expect(value.get('f')).toBe(false);
    expect(Buffer.from(value.get('d') as Uint8Array).toString()).toBe('hello');
    expect((value.get('when') as Date).toISOString()).toBe('2014-10-26T14:03:27.000Z');
    expect(value.get('a')).toEqual([1, new Map(), []]);
  });

  it('keeps __proto__, constructor and prototype as plain keys, polluting nothing', () => {
    const value = parsePlistDict(
      doc(
        '<dict><key>__proto__</key><dict><key>polluted</key><true/></dict><key>constructor</key><string>x</string><key>prototype</key><integer>1</integer></dict>',
      ),
    );
    expect((value.get('__proto__') as PlistDict).get('polluted')).toBe(true);
    expect(value.get('constructor')).toBe('x');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  const hostile: [string, string][] = [
    ['an internal DTD subset declaring entities', `<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaa">]><plist><string>&a;</string></plist>`],
    ['a billion-laughs attempt', `<!DOCTYPE p [<!ENTITY l0 "ha"><!ENTITY l1 "&l0;&l0;&l0;">]><plist><string>&l1;</string></plist>`],
    ['an external entity', doc('<string>&xxe;</string>')],
    ['an unterminated entity', doc('<string>a &amp b</string>')],
    ['a character reference past U+10FFFF', doc('<string>&#x110000;</string>')],
    ['CDATA', doc('<string><![CDATA[x]]></string>')],
    ['an element inside a string', doc('<string>a<b/>c</string>')],
    ['an unknown element', doc('<set><string>x</string></set>')],
    ['mismatched tags', doc('<array><string>x</array>')],
    ['an unclosed document', `${HEADER}<plist><dict><key>a</key><string>b</string>`],
    ['a key without a value', doc('<dict><key>a</key></dict>')],
    ['a value without a key', doc('<dict><string>a</string></dict>')],
    ['a duplicate key', doc('<dict><key>a</key><true/><key>a</key><false/></dict>')],
    ['attributes on a value', doc('<string id="x">a</string>')],
    ['two root values', doc('<dict/><dict/>')],
    ['content after </plist>', `${doc('<dict/>')}<plist><dict/></plist>`],
    ['a malformed integer', doc('<integer>12abc</integer>')],
    ['an over-long integer', doc(`<integer>${'9'.repeat(41)}</integer>`)],
    ['a malformed real', doc('<real>1..2</real>')],
    ['malformed base64', doc('<data>a$b=</data>')],
    ['a malformed date', doc('<date>yesterday</date>')],
    ['text instead of a plist', 'No such disk\n'],
    ['JSON', '{"a": 1}'],
    ['nesting beyond the depth limit', doc(`${'<array>'.repeat(200)}${'</array>'.repeat(200)}`)],
    ['true with content', doc('<true>yes</true>')],
  ];
  it.each(hostile)('refuses %s with INV_ERR_USB_OS_OUTPUT_INVALID', (_what, text) => {
    expect(() => parsePlist(text)).toThrow(expect.objectContaining({ code: 'INV_ERR_USB_OS_OUTPUT_INVALID' }));
  });

  it('refuses input over the size limit before reading it', () => {
    const text = doc(`<string>${'a'.repeat(2000)}</string>`);
    expect(() => parsePlist(text, { maxLength: 1000, maxDepth: 8 })).toThrow(expect.objectContaining({ code: 'INV_ERR_USB_OS_OUTPUT_INVALID' }));
  });

  it('never crashes on mangled real output: it parses or throws the coded error', () => {
    const real = fixture('ioreg-plain-stick.plist');
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pieces = ['<', '>', '/', '&', ';', '<dict>', '</array>', '<key>', '&#x0;', '&#xD800;', '"', '<!--', ']]>', '\u0000'];
    for (let i = 0; i < 1000; i++) {
      let text = real;
      for (let j = 0; j < 1 + random(4); j++) {
        const at = random(text.length);
        text = random(2) === 0 ? text.slice(0, at) + pieces[random(pieces.length)]! + text.slice(at) : text.slice(0, at) + text.slice(at + 1 + random(20));
      }
      try {
        parsePlist(text);
      } catch (e) {
        expect(e).toBeInstanceOf(InvigilatorError);
        expect((e as InvigilatorError).code).toBe('INV_ERR_USB_OS_OUTPUT_INVALID');
      }
    }
  });
});
