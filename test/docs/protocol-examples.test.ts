import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { proofFor, proofMatches } from '../../node-common/device-proof';
import { usbAllowDigest, usbAllowKey } from '../../node-common/usb-allow-digest';
import type { Decoded } from '../../shared/errors';
import { validatePolicy } from '../../shared/policy/validate';
import {
  AGENT_TO_COLLECTOR,
  AGENT_TO_TRAY,
  COLLECTOR_TO_AGENT,
  EVENT_DATA,
  EVENT_TYPES,
  TRAY_TO_AGENT,
  command,
  decodeAgentToCollector,
  decodeAgentToTray,
  decodeCollectorToAgent,
  decodeTrayToAgent,
  eventEnvelope,
  hello,
} from '../../shared/protocol';
import { decodeUntrusted } from '../../shared/schema';
import { type JsonLimits, parseUntrustedJson } from '../../shared/untrusted-json';
import { codeSpans, sections, tableRows } from './markdown';

/**
 * docs/protocol.md is meant to be enough to write an agent or a tray from. So
 * every message and event it shows is parsed here by the real schemas, through
 * the same decoder and limits as the program that receives it, and every
 * message and event type must have an example: the doc cannot drift from the
 * code without this failing.
 */
const protocol = readFileSync(join(__dirname, '../../docs/protocol.md'), 'utf8');
const all = sections(protocol);

/** Each direction's messages, the decoder its receiver uses and the limits it passes (the files named). */
const DIRECTIONS = {
  // collector/agent-socket.ts: maxPayload (1 MiB by default), depth 32.
  'Agent → collector': { messages: AGENT_TO_COLLECTOR, decode: decodeAgentToCollector, limits: { maxBytes: 1024 * 1024, maxDepth: 32 } },
  // agent/link/link.ts.
  'Collector → agent': { messages: COLLECTOR_TO_AGENT, decode: decodeCollectorToAgent, limits: { maxBytes: 8 * 1024 * 1024, maxDepth: 32 } },
  // agent/tray/tray-server.ts: one line, 64 KiB, depth 8.
  'Tray → agent': { messages: TRAY_TO_AGENT, decode: decodeTrayToAgent, limits: { maxBytes: 64 * 1024, maxDepth: 8 } },
  // tray-ui/main/agent-client.ts: the same.
  'Agent → tray': { messages: AGENT_TO_TRAY, decode: decodeAgentToTray, limits: { maxBytes: 64 * 1024, maxDepth: 8 } },
} as const satisfies Record<string, { messages: readonly unknown[]; decode: (s: string, l: JsonLimits) => Decoded<unknown>; limits: JsonLimits }>;
type Direction = keyof typeof DIRECTIONS;

const messageSections = all.filter((s) => s.level === 4 && s.parents.includes('Messages'));
const typeOf = (title: string) => /^`([^`]+)`$/.exec(title)?.[1];
const jsonOf = (s: { blocks: { lang: string; text: string }[] }) => s.blocks.filter((b) => b.lang === 'json').map((b) => b.text);
/** The fields of an object schema that may be left out. */
const optionalFields = (shape: Record<string, unknown>) =>
  Object.entries(shape)
    .filter(([, s]) => (s as { safeParse(v: unknown): { success: boolean } }).safeParse(undefined).success)
    .map(([f]) => f);
/** A decoder's problems, readable in a failure message. */
const problems = (d: Decoded<unknown>) => (d.ok ? [] : d.problems.map((p) => `${p.code} at ${p.path}${p.message ? `: ${p.message}` : ''}`));

/** Every example of each message type, decoded by its receiver. */
const examples = messageSections.flatMap((s) => {
  const direction = s.parents[s.parents.length - 1] as Direction;
  return jsonOf(s).map((text, i) => ({ type: typeOf(s.title) ?? s.title, direction, index: i + 1, text }));
});
const decoded = (type: string) => examples.filter((e) => e.type === type).map((e) => DIRECTIONS[e.direction].decode(e.text, DIRECTIONS[e.direction].limits));
const values = <T>(type: string) =>
  decoded(type)
    .filter((d) => d.ok)
    .map((d) => d.value as T);

describe('docs/protocol.md: message examples', () => {
  it('has a section per direction, and only message sections under them', () => {
    expect(new Set(messageSections.map((s) => s.parents[s.parents.length - 1]))).toEqual(new Set(Object.keys(DIRECTIONS)));
    for (const s of messageSections) expect(typeOf(s.title)).toBeDefined();
  });

  const expected = Object.entries(DIRECTIONS).flatMap(([direction, d]) => d.messages.map((m) => [m.shape.type.value, direction as Direction] as const));
  it.each(expected)('gives %s (%s) a section with at least one example', (type, direction) => {
    const section = messageSections.filter((s) => typeOf(s.title) === type);
    expect(section.map((s) => s.parents[s.parents.length - 1])).toEqual([direction]);
    expect(jsonOf(section[0]!).length).toBeGreaterThan(0);
  });

  it('documents no message the schemas do not define', () => {
    const known = new Set<string>(expected.map(([type]) => type));
    expect(messageSections.map((s) => typeOf(s.title)).filter((t) => !known.has(t!))).toEqual([]);
  });

  it.each(examples.map((e) => [e.type, e.index, e] as const))('parses the %s example %i with the real schema', (type, _i, e) => {
    const result = DIRECTIONS[e.direction].decode(e.text, DIRECTIONS[e.direction].limits);
    expect(problems(result)).toEqual([]);
    expect((result as { value: { type: string } }).value.type).toBe(type);
  });

  it.each(expected.map(([type]) => type))('names every field of %s in its section', (type) => {
    const schema = [...AGENT_TO_COLLECTOR, ...COLLECTOR_TO_AGENT, ...TRAY_TO_AGENT, ...AGENT_TO_TRAY].find((m) => m.shape.type.value === type)!;
    const section = messageSections.find((s) => typeOf(s.title) === type)!;
    const missing = Object.keys(schema.shape).filter((f) => !section.body.includes(`"${f}"`) && !section.body.includes(`\`${f}\``));
    expect(missing).toEqual([]);
  });

  it.each(expected.map(([type]) => type))('says which fields of %s are optional', (type) => {
    const schema = [...AGENT_TO_COLLECTOR, ...COLLECTOR_TO_AGENT, ...TRAY_TO_AGENT, ...AGENT_TO_TRAY].find((m) => m.shape.type.value === type)!;
    const section = messageSections.find((s) => typeOf(s.title) === type)!;
    const prose = section.body.replace(/^```[\s\S]*?^```$/gm, '');
    const sentences = prose.split(/(?<=[.:;])\s+/);
    const unsaid = optionalFields(schema.shape).filter((f) => !sentences.some((x) => x.includes(`\`${f}\``) && /optional/i.test(x)));
    expect(unsaid).toEqual([]);
  });

  it('shows a hello of each kind: enroll and device', () => {
    const kinds = values<{ auth: { kind: string } }>('hello').map((h) => h.auth.kind);
    expect(new Set(kinds)).toEqual(new Set(hello.shape.auth.options.map((o) => o.shape.kind.value)));
  });

  it('shows a command of every kind, and a usb-allow entry in both forms', () => {
    const commands = values<{ command: { kind: string; entry?: object } }>('command').map((c) => c.command);
    expect(new Set(commands.map((c) => c.kind))).toEqual(new Set(command.shape.command.options.map((o) => o.shape.kind.value)));
    const entries = commands.flatMap((c) => (c.entry ? [c.entry] : []));
    expect(entries.some((e) => 'vendorId' in e)).toBe(true);
    expect(entries.some((e) => 'match' in e)).toBe(true);
  });

  it('pushes a policy the agent would apply (cross-references checked too)', () => {
    const pushes = values<{ policy: unknown }>('policy.push');
    expect(pushes.length).toBeGreaterThan(0);
    for (const p of pushes) expect(problems(validatePolicy(p.policy))).toEqual([]);
  });
});

/**
 * The worked example of the device proof and of the keyed allowlist digest:
 * the doc's values, recomputed here from the doc's own secret, id and nonce,
 * both by hand with node:crypto (as an outside implementer would) and by the
 * code the agent and collector run.
 */
describe('docs/protocol.md: the worked examples of the keys', () => {
  const [enrolled] = values<{ deviceId: string; deviceSecret: string }>('enrolled');
  const [challenge] = values<{ nonce: string }>('challenge');
  const [proof] = values<{ deviceId: string; nonce: string; proof: string }>('auth.proof');
  const device = values<{ auth: { kind: string; deviceId?: string } }>('hello').find((h) => h.auth.kind === 'device');

  it('uses one device throughout: enrolled, hello, challenge and proof agree', () => {
    expect(enrolled && challenge && proof && device).toBeTruthy();
    expect(device!.auth.deviceId).toBe(enrolled!.deviceId);
    expect(proof!.deviceId).toBe(enrolled!.deviceId);
    expect(proof!.nonce).toBe(challenge!.nonce);
    // 32 random bytes each, as the collector makes them (collector/device-auth.ts).
    expect(Buffer.from(enrolled!.deviceSecret, 'base64url')).toHaveLength(32);
    expect(Buffer.from(challenge!.nonce, 'base64url')).toHaveLength(32);
  });

  it('gives the proof the HMAC keyed with the decoded secret bytes makes', () => {
    const key = Buffer.from(enrolled!.deviceSecret, 'base64url');
    const byHand = createHmac('sha256', key).update(`invigilator-auth-v1\n${enrolled!.deviceId}\n${challenge!.nonce}`).digest('base64url');
    expect(proof!.proof).toBe(byHand);
    expect(proofFor(key, challenge!.nonce, enrolled!.deviceId)).toBe(byHand);
    expect(proofMatches(key, challenge!.nonce, enrolled!.deviceId, proof!.proof)).toBe(true);
    // The node:crypto lines the doc gives compute that proof, and say so.
    const lines = all.find((s) => s.title === '`auth.proof`')!.blocks.find((b) => b.lang === 'js')!.text;
    expect(lines).toContain(`// '${byHand}'`);
    expect(runInNewContext(lines, { require, Buffer })).toBe(byHand);
    // The mistake the doc warns of: keyed with the secret's text, it does not match.
    const textKeyed = createHmac('sha256', enrolled!.deviceSecret)
      .update(`invigilator-auth-v1\n${enrolled!.deviceId}\n${challenge!.nonce}`)
      .digest('base64url');
    expect(protocol).toContain(textKeyed);
    expect(proofMatches(key, challenge!.nonce, enrolled!.deviceId, textKeyed)).toBe(false);
  });

  it('gives the keyed usb-allow entry the digest of the stick it names, under this computer’s key', () => {
    const keyed = values<{ command: { kind: string; entry?: { match?: { digest: string; serial: boolean } } } }>('command')
      .map((c) => c.command.entry?.match)
      .find((m) => m !== undefined);
    const stick = /digest of vendor `([0-9a-f]{4})`, product `([0-9a-f]{4})` and serial `([^`]+)`/.exec(protocol);
    expect(keyed && stick).toBeTruthy();
    const secret = Buffer.from(enrolled!.deviceSecret, 'base64url');
    const key = createHmac('sha256', secret).update('invigilator-usb-allow-v1').digest();
    const byHand = createHmac('sha256', key)
      .update(`${stick![1]}\n${stick![2]}\n${keyed!.serial ? stick![3] : ''}`)
      .digest('base64url');
    expect(keyed!.digest).toBe(byHand);
    expect(usbAllowDigest(usbAllowKey(secret), { vendorId: stick![1]!, productId: stick![2]!, serial: keyed!.serial ? stick![3] : undefined })).toBe(byHand);
  });
});

describe('docs/protocol.md: events', () => {
  const events = all.filter((s) => s.level === 2 && (s.title === 'Event envelope' || s.title === 'Event types'));
  /** Whole envelopes: the fenced examples of both sections, and every envelope inside an event.batch example. */
  const envelopes = [
    ...events.flatMap((s) => jsonOf(s).map((text) => ({ where: s.title, text }))),
    ...examples
      .filter((e) => e.type === 'event.batch')
      .flatMap((e) => (JSON.parse(e.text) as { events: unknown[] }).events.map((ev) => ({ where: 'event.batch', text: JSON.stringify(ev) }))),
  ];

  it('gives complete envelopes, and they parse (the envelope and its data, strictly)', () => {
    expect(envelopes.length).toBeGreaterThan(2);
    for (const e of envelopes) expect({ where: e.where, problems: problems(decodeUntrusted(eventEnvelope, e.text)) }).toEqual({ where: e.where, problems: [] });
  });

  const table = tableRows(events.find((s) => s.title === 'Event types')!.body).filter((r) => /^`[a-z.-]+`$/.test(r[0] ?? ''));
  const rows = new Map(table.map((r) => [r[0]!.slice(1, -1), r.slice(1).join(' | ')]));

  it.each(EVENT_TYPES)('gives %s example data that parses with its schema', (type) => {
    const cell = rows.get(type);
    expect(cell).toBeDefined();
    const example = codeSpans(cell!).find((c) => c.startsWith('{'));
    expect(example).toBeDefined();
    expect(problems(decodeUntrusted(EVENT_DATA[type], example!))).toEqual([]);
  });

  it.each(EVENT_TYPES)('marks the optional fields of %s data as optional', (type) => {
    const cell = rows.get(type) ?? '';
    expect(optionalFields(EVENT_DATA[type].shape).filter((f) => !new RegExp(`optional[^|]*\`${f}\``).test(cell))).toEqual([]);
  });

  it('lists no event type the schemas do not define', () => expect([...rows.keys()].filter((t) => !(t in EVENT_DATA))).toEqual([]));

  it.each(EVENT_TYPES)('names every field of %s data in its row', (type) => {
    const cell = rows.get(type) ?? '';
    const missing = Object.keys(EVENT_DATA[type].shape).filter((f) => !cell.includes(`"${f}"`) && !cell.includes(`\`${f}\``));
    expect(missing).toEqual([]);
  });
});

describe('docs/protocol.md: limits', () => {
  /** The deepest object or array in a value, counted as shared/untrusted-json.ts counts: the top-level one is 1. */
  const depth = (v: unknown): number => (v !== null && typeof v === 'object' ? 1 + Math.max(0, ...(Array.isArray(v) ? v : Object.values(v)).map(depth)) : 0);

  it('counts depth as the decoder does, in its own examples', () => {
    const claim = /So\s+`([^`]+)`\s+is\s+(\d+)\s+deep,\s+`([^`]+)`\s+(\d+),/.exec(protocol);
    expect(claim).toBeTruthy();
    for (const [text, n] of [
      [claim![1]!, Number(claim![2])],
      [claim![3]!, Number(claim![4])],
    ] as const) {
      expect(parseUntrustedJson(text, { maxBytes: 1024, maxDepth: n }).ok).toBe(true);
      expect(parseUntrustedJson(text, { maxBytes: 1024, maxDepth: n - 1 })).toMatchObject({ ok: false, problems: [{ code: 'INV_ERR_TOO_DEEP' }] });
      expect(depth(JSON.parse(text))).toBe(n);
    }
  });

  it('names the deepest message examples, and their depth', () => {
    const claim = /The\s+deepest\s+examples\s+below,\s+of\s+((?:`[^`]+`(?:,\s+|\s+and\s+)?)+),\s+are\s+(\d+)\s+deep/.exec(protocol);
    expect(claim).toBeTruthy();
    const depths = examples.map((e) => ({ type: e.type, depth: depth(JSON.parse(e.text)) }));
    const most = Math.max(...depths.map((d) => d.depth));
    expect(most).toBe(Number(claim![2]));
    expect(new Set(depths.filter((d) => d.depth === most).map((d) => d.type))).toEqual(new Set(codeSpans(claim![1]!)));
  });
});
