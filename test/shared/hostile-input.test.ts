import { decodeAgentToCollector, decodeTrayToAgent } from '../../shared/protocol';
import { parseUntrustedJson } from '../../shared/untrusted-json';
import type { Decoded } from '../../shared/errors';
import { AGENT_TO_COLLECTOR_SAMPLES, TRAY_TO_AGENT_SAMPLES } from '../support/samples';

function codes(result: Decoded<unknown>): string[] {
  return result.ok ? [] : result.problems.map((p) => p.code);
}

const hello = AGENT_TO_COLLECTOR_SAMPLES.hello;

/** Each case: hostile input, and the code it must be refused with. None may throw. */
const cases: Array<[string, string | Uint8Array, string]> = [
  ['a number where a string belongs', JSON.stringify({ ...hello, hostname: 42 }), 'INV_ERR_SCHEMA_TYPE'],
  ['an array where an object belongs', JSON.stringify([hello]), 'INV_ERR_SCHEMA_TYPE'],
  ['null', 'null', 'INV_ERR_SCHEMA_TYPE'],
  ['an unknown field', JSON.stringify({ ...hello, isAdmin: true }), 'INV_ERR_SCHEMA_UNKNOWN_FIELD'],
  ['a missing field', JSON.stringify({ ...hello, hostname: undefined }), 'INV_ERR_SCHEMA_REQUIRED'],
  ['a 1 MB string inside a small frame limit', JSON.stringify({ ...hello, hostname: 'x'.repeat(1024 * 1024) }), 'INV_ERR_INPUT_TOO_LARGE'],
  ['nesting 10,000 deep', '['.repeat(10_000) + ']'.repeat(10_000), 'INV_ERR_TOO_DEEP'],
  ['objects nested 10,000 deep', '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000), 'INV_ERR_TOO_DEEP'],
  ['a __proto__ key', `{"v":1,"type":"hello","__proto__":{"isAdmin":true}}`, 'INV_ERR_FORBIDDEN_KEY'],
  ['a constructor key deep inside', `{"v":1,"type":"event.batch","events":[{"data":{"constructor":{"prototype":1}}}]}`, 'INV_ERR_FORBIDDEN_KEY'],
  ['a __proto__ key spelt with escapes', `{"v":1,"type":"hello","\\u005f_proto__":{}}`, 'INV_ERR_FORBIDDEN_KEY'],
  ['invalid UTF-8 bytes', Uint8Array.from([0x7b, 0x22, 0x76, 0x22, 0x3a, 0xc3, 0x28, 0x7d]), 'INV_ERR_INVALID_UTF8'],
  ['an overlong UTF-8 encoding', Uint8Array.from([0x22, 0xc0, 0xaf, 0x22]), 'INV_ERR_INVALID_UTF8'],
  ['a lone surrogate escaped in a string', `{"v":1,"type":"hello","hostname":"\\ud800"}`, 'INV_ERR_INVALID_UTF8'],
  ['malformed JSON', '{"v":1,"type":', 'INV_ERR_INVALID_JSON'],
  ['an empty frame', '', 'INV_ERR_INVALID_JSON'],
  ['a bad enum value', JSON.stringify({ ...hello, platform: 'amiga' }), 'INV_ERR_SCHEMA_VALUE'],
  ['an identifier with markup', JSON.stringify({ ...hello, auth: { kind: 'device', deviceId: '<script>' } }), 'INV_ERR_SCHEMA_FORMAT'],
];

describe('hostile input at the agent socket', () => {
  it.each(cases)('%s is refused with a code and never throws', (_name, input, code) => {
    let result: Decoded<unknown> | undefined;
    expect(() => {
      result = decodeAgentToCollector(input, { maxBytes: 64 * 1024, maxDepth: 32 });
    }).not.toThrow();
    expect(codes(result!)).toContain(code);
  });

  it('reports every mistake in a message, each with its JSON path', () => {
    const result = decodeAgentToCollector(JSON.stringify({ ...hello, hostname: 7, platform: 'amiga', extra: 1 }));
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.problems.map((p) => [p.code, p.path])).toEqual(
      expect.arrayContaining([
        ['INV_ERR_SCHEMA_TYPE', '$.hostname'],
        ['INV_ERR_SCHEMA_VALUE', '$.platform'],
        ['INV_ERR_SCHEMA_UNKNOWN_FIELD', '$.extra'],
      ]),
    );
  });

  it('does not pollute Object.prototype whatever it is sent', () => {
    decodeAgentToCollector('{"__proto__":{"polluted":true},"v":1,"type":"hello"}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('hostile input at the tray socket', () => {
  it('caps free text from the tray', () => {
    const report = { ...TRAY_TO_AGENT_SAMPLES['tray.report'], text: 'x'.repeat(5000) };
    expect(codes(decodeTrayToAgent(JSON.stringify(report)))).toEqual(['INV_ERR_SCHEMA_RANGE']);
  });

  it('keeps markup as inert text: validation does not alter or execute it', () => {
    const answer = { ...TRAY_TO_AGENT_SAMPLES['tray.answer'], text: '<img src=x onerror=alert(1)>' };
    expect(decodeTrayToAgent(JSON.stringify(answer))).toEqual({ ok: true, value: answer });
  });
});

describe('the JSON boundary itself', () => {
  it('accepts keys that only contain a forbidden word', () => {
    expect(parseUntrustedJson('{"constructorName":"x","note":"__proto__ in a value is fine"}')).toEqual({
      ok: true,
      value: { constructorName: 'x', note: '__proto__ in a value is fine' },
    });
  });

  it('counts brackets inside strings as text, not nesting', () => {
    expect(parseUntrustedJson(JSON.stringify({ s: '['.repeat(1000) }), { maxBytes: 1e6, maxDepth: 2 }).ok).toBe(true);
  });

  it('accepts valid multi-byte UTF-8 and surrogate pairs', () => {
    const value = { name: 'Zoë 😀 Ålesund' };
    expect(parseUntrustedJson(new TextEncoder().encode(JSON.stringify(value)))).toEqual({ ok: true, value });
  });
});
