import { z as zod } from 'zod';
import type { z } from 'zod';
import { AGENT_TO_COLLECTOR, EVENT_TYPES, type EventEnvelope, agentToCollector, collectorToAgent, decodeAgentToCollector } from '../../shared/protocol';
import { agentToTray, trayToAgent } from '../../shared/protocol/agent-tray';
import { UNSURE, fastParser, fastValidator } from '../../shared/schema-fast-path';
import { validate } from '../../shared/schema';
import { AGENT_TO_COLLECTOR_SAMPLES, AGENT_TO_TRAY_SAMPLES, COLLECTOR_TO_AGENT_SAMPLES, TRAY_TO_AGENT_SAMPLES, sampleEvent } from '../support/samples';

/** A small seeded generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** A batch as an agent sends it, every optional envelope field filled: clause, the user's osId and role. */
function batchOf(types: readonly string[], firstSeq = 1): Json {
  const events = types.map(
    (type, i) =>
      ({
        ...sampleEvent(type as EventEnvelope['type']),
        seq: firstSeq + i,
        user: { name: 'amy.p', osId: '1000', role: 'pupil' },
        clause: { id: 'bps-usb', document: 'Basildon Primary AUP', section: '3.7', quote: 'Memory sticks must be encrypted.' },
      }) as EventEnvelope,
  );
  return clone({ v: 1, type: 'event.batch', events }) as Json;
}

const directions = [
  { name: 'agent -> collector', schema: agentToCollector as z.ZodType, samples: Object.values(AGENT_TO_COLLECTOR_SAMPLES) },
  { name: 'collector -> agent', schema: collectorToAgent as z.ZodType, samples: Object.values(COLLECTOR_TO_AGENT_SAMPLES) },
  { name: 'tray -> agent', schema: trayToAgent as z.ZodType, samples: Object.values(TRAY_TO_AGENT_SAMPLES) },
  { name: 'agent -> tray', schema: agentToTray as z.ZodType, samples: Object.values(AGENT_TO_TRAY_SAMPLES) },
];

/** Strings a schema treats at its edges: lengths either side of the caps (in UTF-16 units and in code points), text the cleaners change. */
const STRINGS = [
  '',
  ' ',
  'x'.repeat(128),
  'x'.repeat(129),
  'x'.repeat(256),
  'x'.repeat(257),
  'x'.repeat(4097),
  'x'.repeat(20_000),
  '😀'.repeat(128), // 256 units, 128 code points
  '😀'.repeat(200), // 400 units, 200 code points: within a 256 cap
  '😀'.repeat(257),
  '\ud800'.repeat(3),
  '\udc00x\ud800',
  'a\u0000b',
  'right\u202eto left',
  '  spaced   out  ',
  'line\r\nbreak\tand tab',
  'zero\u200bwidth',
  '<script>alert(1)</script>',
  'dev-1',
  'INV_ERR_X',
  '0781',
  'ABCD',
  '2026-11-23T09:15:00.000Z',
  '2026-11-23T09:15:00+01:00',
  '2026-11-23 09:15:00',
  '0b6f3c1e-8f2a-4c3d-9e4f-000000000001',
  '0B6F3C1E-8F2A-4C3D-9E4F-000000000001',
  'a'.repeat(64),
  'event.batch',
  'usb.connected',
  'session.started',
  'pupil',
  'linux',
  'info',
];
const NUMBERS = [0, -0, 1, -1, 0.5, 1.5, 7, 255, 256, 500, 501, 1024, 2 ** 31, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, 1e308, -1e308];
const KEYS = ['extra', 'v', 'type', 'seq', 'id', 'data', 'name', 'toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__', ''];
const TYPES = [...EVENT_TYPES, ...AGENT_TO_COLLECTOR.map((s) => s.shape.type.value), 'policy.push', 'tray.report', 'enroll', 'device', 'logoff', 'user'];

/** Every place in the value: the container and the key or index under which something sits. */
function places(root: Json): Array<{ parent: Json[] | { [k: string]: Json }; key: string | number }> {
  const out: Array<{ parent: Json[] | { [k: string]: Json }; key: string | number }> = [];
  const walk = (node: Json) => {
    if (Array.isArray(node)) node.forEach((child, i) => (out.push({ parent: node, key: i }), walk(child)));
    else if (node !== null && typeof node === 'object')
      for (const k of Object.keys(node)) {
        out.push({ parent: node, key: k });
        walk(node[k]!);
      }
  };
  walk(root);
  return out;
}

function containers(root: Json): Array<Json[] | { [k: string]: Json }> {
  const out: Array<Json[] | { [k: string]: Json }> = [];
  const walk = (node: Json) => {
    if (node === null || typeof node !== 'object') return;
    out.push(node);
    for (const child of Array.isArray(node) ? node : Object.values(node)) walk(child);
  };
  walk(root);
  return out;
}

const setAt = (parent: Json[] | { [k: string]: Json }, key: string | number, value: Json) => {
  // defineProperty, so "__proto__" becomes an own key as JSON.parse makes it.
  Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true });
};

/** One change to the value, in place; returns what it did, for a failure's message. */
function mutate(root: Json, next: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const all = places(root);
  if (all.length === 0) return 'nothing to change';
  const { parent, key } = pick(all);
  const here = (parent as Record<string | number, Json>)[key]!;
  switch (Math.floor(next() * 12)) {
    case 0:
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key as string];
      return `dropped ${key}`;
    case 1:
      setAt(parent, key, pick<Json>([null, true, false, [], {}, [1], { a: 1 }, ...NUMBERS.slice(0, 6), ...STRINGS.slice(0, 4)]));
      return `retyped ${key}`;
    case 2: {
      const objects = containers(root).filter((c): c is { [k: string]: Json } => !Array.isArray(c));
      if (objects.length === 0) return 'no object';
      const k = pick(KEYS);
      setAt(pick(objects), k, pick<Json>([1, 'x', null, {}, []]));
      return `added key ${k}`;
    }
    case 3:
      setAt(parent, key, pick(STRINGS));
      return `string at ${key}`;
    case 4:
      setAt(parent, key, pick(NUMBERS));
      return `number at ${key}`;
    case 5:
      setAt(parent, key, pick<Json>([[here], { value: here }, [[[here]]]]));
      return `nested ${key}`;
    case 6:
      setAt(parent, key, pick(TYPES));
      return `type name at ${key}`;
    case 7: {
      // The same keys in another order: zod's output has the shape's order, whatever the input's.
      const objects = containers(root).filter((c): c is { [k: string]: Json } => !Array.isArray(c));
      const o = pick(objects);
      const entries = Object.entries(o).sort(() => next() - 0.5);
      for (const k of Object.keys(o)) delete o[k];
      for (const [k, v] of entries) setAt(o, k, v);
      return 'shuffled keys';
    }
    case 8: {
      const arrays = containers(root).filter((c): c is Json[] => Array.isArray(c));
      if (arrays.length === 0) return 'no array';
      const a = pick(arrays);
      const n = pick([0, 1, 2, 60, 501]);
      if (n === 0) a.length = 0;
      else for (let i = 0; i < n && a.length > 0; i++) a.push(clone(a[i % a.length]!));
      return `array grown by ${n}`;
    }
    case 9:
      // Valid text the cleaners change: the output differs from the input, and must be zod's.
      setAt(parent, key, typeof here === 'string' ? `${here}\u202e\u0007  x` : here);
      return `dirtied ${key}`;
    case 10:
      setAt(parent, key, null);
      return `null at ${key}`;
    default:
      return 'unchanged';
  }
}

describe('the schema fast path', () => {
  it.each(directions)('vouches for every $name sample itself, and gives what zod gives', ({ schema, samples }) => {
    const fast = fastParser(schema);
    for (const sample of samples) {
      const out = fast(clone(sample));
      expect(out).not.toBe(UNSURE);
      expect(out).toStrictEqual(schema.parse(clone(sample)));
    }
  });

  it('vouches for a batch of every event type, all optional envelope fields filled', () => {
    const fast = fastParser(agentToCollector);
    for (const type of EVENT_TYPES) {
      const frame = batchOf([type]);
      expect([type, fast(clone(frame)) === UNSURE]).toEqual([type, false]);
    }
    const big = batchOf(Array.from({ length: 500 }, (_, i) => EVENT_TYPES[i % EVENT_TYPES.length]!));
    expect(JSON.stringify(fast(clone(big)))).toBe(JSON.stringify(agentToCollector.parse(clone(big))));
  });

  it("is the codec's path: a batch it takes is decoded, one it cannot is refused with zod's own problems", () => {
    const ok = decodeAgentToCollector(JSON.stringify(batchOf(['usb.connected', 'session.started'])));
    expect(ok.ok).toBe(true);
    const bad = clone(batchOf(['usb.connected'])) as { events: Array<{ data: { device: { vendorId: string } } }> };
    bad.events[0]!.data.device.vendorId = 'XYZ!';
    expect(decodeAgentToCollector(JSON.stringify(bad))).toStrictEqual(validate(agentToCollector, clone(bad)));
  });

  /**
   * The property: for ~6,000 frames, each a sample or a batch mutated one to three times
   * (fields dropped, retyped, added, lengthened past their caps, nested, renamed, reordered,
   * arrays emptied or grown, text dirtied), fast path plus fallback gives exactly what zod gives:
   * the same output, key order included, or the same problems. Seeded: a failure names its seed.
   */
  it('gives the same result as zod alone on 6,000 mutated frames', () => {
    const seeds: Array<{ schema: z.ZodType; frame: Json }> = [];
    for (const d of directions) for (const s of d.samples) seeds.push({ schema: d.schema, frame: clone(s) as Json });
    for (const type of EVENT_TYPES) seeds.push({ schema: agentToCollector, frame: batchOf([type]) });
    for (let i = 0; i < 20; i++) seeds.push({ schema: agentToCollector, frame: batchOf(EVENT_TYPES.slice(i, i + 5), 10 * i + 1) });
    const validators = new Map(directions.map((d) => [d.schema, fastValidator(d.schema)]));

    let accepted = 0;
    let acceptedChanged = 0;
    let acceptedMutated = 0;
    for (let seed = 1; seed <= 6000; seed++) {
      const next = random(seed);
      const { schema, frame } = seeds[Math.floor(next() * seeds.length)]!;
      const value = clone(frame);
      const done: string[] = [];
      const times = seed % 10 === 0 ? 0 : 1 + Math.floor(next() * 3);
      for (let i = 0; i < times; i++) done.push(mutate(value, next));
      const text = JSON.stringify(value);
      const fast = validators.get(schema)!(JSON.parse(text));
      const zod = validate(schema, JSON.parse(text));
      const context = `seed ${seed}: ${done.join(', ')}`;
      expect([context, fast]).toStrictEqual([context, zod]);
      if (fast.ok && zod.ok) expect([context, JSON.stringify(fast.value)]).toEqual([context, JSON.stringify(zod.value)]);
      if (fastParser(schema)(JSON.parse(text)) !== UNSURE) {
        accepted++;
        if (times > 0) acceptedMutated++;
        if (JSON.stringify((fast as { value: unknown }).value) !== text) acceptedChanged++;
      }
    }
    // Not vacuous: the fast path itself took many frames, mutated ones among them, some changed by cleaning or reordering.
    expect(accepted).toBeGreaterThan(1000);
    expect(acceptedMutated).toBeGreaterThan(300);
    expect(acceptedChanged).toBeGreaterThan(100);
  });

  /**
   * The protocol's schemas use only some of what the compiler takes (inclusive bounds on integers,
   * a minimum length beside a pattern), so each kind of schema and check it compiles is also held
   * to zod alone here, by itself, at and around its edges.
   */
  it('agrees with zod on each kind of schema and check it compiles, at and around their edges', () => {
    const trim = (s: string) => s.trim();
    const compiled: Array<[string, z.ZodType]> = [
      ['min', zod.string().min(3)],
      ['max', zod.string().max(3)],
      ['min max regex', zod.string().min(2).max(4).regex(/^a/)],
      ['two regexes', zod.string().regex(/b/).regex(/^a/)],
      ['max then cleaned', zod.string().max(4).overwrite(trim)],
      ['cleaned then max', zod.string().overwrite(trim).max(3)],
      // A test after a cleaner sees the cleaned value: one that lengthens it shows whether the order was kept.
      [
        'doubled then max',
        zod
          .string()
          .overwrite((s) => s + s)
          .max(3),
      ],
      ['uuid', zod.uuid()],
      ['datetime', zod.iso.datetime({ offset: true })],
      ['date', zod.iso.date()],
      ['number', zod.number()],
      ['int', zod.number().int()],
      ['int in range', zod.number().int().min(0).max(10)],
      ['exclusive bounds', zod.number().gt(0).lt(1)],
      ['inclusive bounds', zod.number().gte(-1.5).lte(1.5)],
      ['positive', zod.number().positive()],
      ['boolean', zod.boolean()],
      ['literal', zod.literal('a')],
      ['literals', zod.literal([1, 'b'])],
      ['enum', zod.enum(['a', 'b'])],
      ['union', zod.union([zod.boolean(), zod.literal('x')])],
      ['array', zod.array(zod.number().int()).min(1).max(2)],
      ['optional', zod.string().max(3).optional()],
      ['strict object', zod.strictObject({ a: zod.string(), b: zod.number().optional() })],
      ['stripping object', zod.object({ a: zod.string().overwrite(trim), b: zod.number().optional() })],
      [
        'discriminated union',
        zod.discriminatedUnion('k', [zod.strictObject({ k: zod.literal('a'), n: zod.number() }), zod.strictObject({ k: zod.literal('b') })]),
      ],
    ];
    const toZod: Array<[string, z.ZodType]> = [
      ['length', zod.string().length(3)],
      ['email', zod.email()],
      ['int32', zod.int32()],
      ['multiple of', zod.number().multipleOf(2)],
      ['nullable', zod.string().nullable()],
      ['default', zod.string().default('d')],
      ['loose object', zod.looseObject({ a: zod.string() })],
      ['record', zod.record(zod.string(), zod.number())],
      ['refined', zod.string().refine((s) => s !== 'abc')],
      ['transformed', zod.string().transform((s) => s.length)],
      ['union of cleaners', zod.union([zod.string().overwrite(trim), zod.number()])],
    ];
    const values: Json[] = [
      ...['', 'a', 'ab', 'abc', 'abcd', 'abcde', ' ab ', ' abc  ', 'b', 'ba', 'x', '😀', '😀😀', '😀😀😀', '😀😀😀😀', 'a😀😀'],
      ...['0b6f3c1e-8f2a-4c3d-9e4f-000000000001', '0b6f3c1e-8f2a-0c3d-9e4f-000000000001', 'a@b.cd', '2026-11-23', '2026-02-30'],
      ...['2026-11-23T09:15:00.000Z', '2026-11-23T09:15:00+01:00', '2026-11-23T09:15:00'],
      ...[-2, -1.5, -1.25, -1, -0.5, 0, 0.5, 1, 1.5, 1.75, 2, 3, 10, 10.5, 11, 2 ** 31, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 1e308],
      ...[true, false, null, [], [1], [1, 2], [1, 2, 3], [1.5], ['a'], {}],
      ...[{ a: 'x' }, { a: ' x ' }, { a: 'x', b: 1 }, { b: 1, a: 'x' }, { a: 'x', c: 1 }, { a: 1 }, { b: 1 }, { a: 'x', b: 'y' }],
      ...[{ k: 'a', n: 1 }, { n: 1, k: 'a' }, { k: 'a' }, { k: 'b' }, { k: 'b', n: 1 }, { k: 'c' }, { k: 1 }],
    ];
    for (const [name, schema] of [...compiled, ...toZod]) {
      const check = fastValidator(schema);
      let vouched = 0;
      for (const value of values) {
        const context = `${name}: ${JSON.stringify(value)}`;
        const got = check(clone(value));
        const want = validate(schema, clone(value));
        expect([context, got]).toStrictEqual([context, want]);
        if (got.ok && want.ok) expect([context, JSON.stringify(got.value)]).toEqual([context, JSON.stringify(want.value)]);
      }
      // A compiled kind is judged by the fast path itself, zod never asked; any other is handed to zod whole.
      const asked = jest.spyOn(schema, 'safeParse');
      for (const value of values) if (fastParser(schema)(clone(value)) !== UNSURE) vouched++;
      const isCompiled = compiled.some(([n]) => n === name);
      expect([name, asked.mock.calls.length === 0, vouched > 0]).toEqual([name, isCompiled, true]);
      asked.mockRestore();
    }
  });

  it("counts a string's length in code points, as zod does: 400 UTF-16 units are 200 characters, within a cap of 256", () => {
    const frame = clone(AGENT_TO_COLLECTOR_SAMPLES.hello) as { hostname: string };
    frame.hostname = '😀'.repeat(200);
    expect(validate(agentToCollector, clone(frame)).ok).toBe(true);
    expect(fastParser(agentToCollector)(clone(frame))).toStrictEqual(agentToCollector.parse(clone(frame)));
    frame.hostname = '😀'.repeat(257);
    expect(fastParser(agentToCollector)(clone(frame))).toBe(UNSURE);
    expect(fastValidator(agentToCollector)(clone(frame))).toStrictEqual(validate(agentToCollector, clone(frame)));
  });
});
