import { cleanName, cleanText } from '../../shared/untrusted-text';
import { decodeAgentToCollector, decodeTrayToAgent } from '../../shared/protocol';
import { name, text } from '../../shared/protocol/primitives';

const UNSAFE_SAMPLES = [
  '\u0000',
  '\u0007',
  '\u001b',
  '\u007f',
  '\u0085',
  '\u009b', // C0, DEL, C1 (NEL, CSI)
  '\u200b',
  '\u200e',
  '\u200f',
  '\u202a',
  '\u202b',
  '\u202c',
  '\u202d',
  '\u202e', // zero width, marks, embeddings and overrides
  '\u2066',
  '\u2067',
  '\u2068',
  '\u2069',
  '\u061c',
  '\ufeff',
  '\u{e0041}', // isolates, Arabic mark, BOM, tag
  '\ue000',
  '\u{f0000}',
  '\ufffe',
  '\uffff', // private use, noncharacters
];

describe('cleaning text from people and devices (issue 13, item 12)', () => {
  it.each(UNSAFE_SAMPLES.map((c) => [c.codePointAt(0)!.toString(16)]))('takes U+%s out of names and free text', (hex) => {
    const c = String.fromCodePoint(parseInt(hex, 16));
    expect(cleanName(`CLASS${c}3-01`)).toBe('CLASS 3-01');
    expect(cleanText(`one${c}two`)).toBe('one two');
  });

  it('puts a name on one line and collapses its spacing, keeping every printable character', () => {
    expect(cleanName('  Room 3\t\tlaptop\r\n07  ')).toBe('Room 3 laptop 07');
    expect(cleanName('\u2028\u2029')).toBe('');
    expect(cleanName('École Élémentaire – Salle 3 📚')).toBe('École Élémentaire – Salle 3 📚');
    expect(cleanName("<img src=x onerror=alert(1)> & 'quotes'")).toBe("<img src=x onerror=alert(1)> & 'quotes'");
    expect(cleanName('bad\ud800half')).toBe('bad\ufffdhalf');
  });

  it('keeps the lines, tabs and spacing of free text, one kind of line break', () => {
    expect(cleanText('Dear sir,\r\n\r\n  my screen\tsays\rerror 5\u2028bye\u2029')).toBe('Dear sir,\n\n  my screen\tsays\nerror 5\nbye\n');
    expect(cleanText('C:\\Users\\amy\\My  Files\\game.exe')).toBe('C:\\Users\\amy\\My  Files\\game.exe');
  });

  it('changes nothing more when cleaned again, never lengthens, and is fast on long hostile input', () => {
    const hostile = `${'a'.repeat(4000)}\u0001${'\u202e \t'.repeat(1000)}\ud800`;
    const started = process.hrtime.bigint();
    for (const clean of [cleanName, cleanText]) {
      const once = clean(hostile);
      expect(clean(once)).toBe(once);
      expect(once.length).toBeLessThanOrEqual(hostile.length);
    }
    expect(cleanName(`${'x'.repeat(5000)}\u0001`)).toBe('x'.repeat(5000));
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(200);
  });

  it('is what the protocol primitives apply, so every message decoded is already clean', () => {
    expect(name.parse('LAB\u202e-07')).toBe('LAB -07');
    expect(text().parse('a\u0007\nb')).toBe('a \nb');
    // The caps are on what was sent: a name is no longer allowed for being cleaned shorter.
    expect(name.safeParse('x'.repeat(257)).success).toBe(false);
    // A required name that is nothing but unsafe characters is empty once cleaned, and refused where a name must not be empty.
    expect(name.min(1).safeParse('\u202e\u200b').success).toBe(false);

    const hello = decodeAgentToCollector(
      JSON.stringify({
        v: 1,
        type: 'hello',
        agentVersion: '0.1.0',
        hostname: 'HEAD\u202eCP-RETCAEH',
        platform: 'linux',
        auth: { kind: 'device', deviceId: 'dev-1' },
      }),
    );
    expect(hello.ok && hello.value.type === 'hello' && hello.value.hostname).toBe('HEAD CP-RETCAEH');
    const report = decodeTrayToAgent(JSON.stringify({ v: 1, type: 'tray.report', kind: 'broken', text: 'The printer\u001b[5m\r\nsays error 5' }));
    expect(report.ok && report.value.type === 'tray.report' && report.value.text).toBe('The printer [5m\nsays error 5');
  });
});
