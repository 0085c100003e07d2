import {
  AGENT_TO_COLLECTOR,
  AGENT_TO_TRAY,
  COLLECTOR_TO_AGENT,
  EVENT_TYPES,
  TRAY_TO_AGENT,
  decodeAgentToCollector,
  decodeAgentToTray,
  decodeCollectorToAgent,
  decodeTrayToAgent,
  encode,
} from '../../shared/protocol';
import type { Decoded } from '../../shared/errors';
import {
  AGENT_TO_COLLECTOR_SAMPLES,
  AGENT_TO_TRAY_SAMPLES,
  COLLECTOR_TO_AGENT_SAMPLES,
  EVENT_DATA_SAMPLES,
  TRAY_TO_AGENT_SAMPLES,
  sampleEvent,
} from '../support/samples';

const directions = [
  { name: 'agent -> collector', union: AGENT_TO_COLLECTOR, samples: AGENT_TO_COLLECTOR_SAMPLES, decode: decodeAgentToCollector },
  { name: 'collector -> agent', union: COLLECTOR_TO_AGENT, samples: COLLECTOR_TO_AGENT_SAMPLES, decode: decodeCollectorToAgent },
  { name: 'tray -> agent', union: TRAY_TO_AGENT, samples: TRAY_TO_AGENT_SAMPLES, decode: decodeTrayToAgent },
  { name: 'agent -> tray', union: AGENT_TO_TRAY, samples: AGENT_TO_TRAY_SAMPLES, decode: decodeAgentToTray },
] as const;

function codes(result: Decoded<unknown>): string[] {
  return result.ok ? [] : result.problems.map((p) => p.code);
}

describe.each(directions)('$name messages', ({ union, samples, decode }) => {
  const types = union.map((schema) => schema.shape.type.value);

  it('has a sample for every message type, so a new type cannot go untested', () => {
    expect(Object.keys(samples).sort()).toEqual([...types].sort());
  });

  it.each(types)('%s survives encode and decode unchanged', (type) => {
    const message = (samples as Record<string, unknown>)[type];
    const decoded = decode(encode(message as never));
    expect(decoded).toEqual({ ok: true, value: message });
  });

  it('decodes from UTF-8 bytes as well as text', () => {
    const [first] = Object.values(samples);
    expect(decode(new TextEncoder().encode(JSON.stringify(first))).ok).toBe(true);
  });

  it('refuses another protocol version with INV_ERR_PROTOCOL_VERSION', () => {
    const [first] = Object.values(samples);
    expect(codes(decode(JSON.stringify({ ...first, v: 2 })))).toEqual(['INV_ERR_PROTOCOL_VERSION']);
  });

  it('refuses an unknown type with INV_ERR_UNKNOWN_MESSAGE', () => {
    expect(codes(decode(JSON.stringify({ v: 1, type: 'format-disk' })))).toEqual(['INV_ERR_UNKNOWN_MESSAGE']);
  });
});

describe('event envelopes', () => {
  it('has sample data for every event type', () => {
    expect(Object.keys(EVENT_DATA_SAMPLES).sort()).toEqual([...EVENT_TYPES].sort());
  });

  it.each(EVENT_TYPES)('a %s event round-trips inside a batch', (type) => {
    const batch = { v: 1 as const, type: 'event.batch' as const, events: [sampleEvent(type)] };
    expect(decodeAgentToCollector(encode(batch))).toEqual({ ok: true, value: batch });
  });

  it('carries the clause that applied', () => {
    const clause = { id: 'bps-two-devices', document: 'Basildon', section: '3.7', quote: 'Users must not log on to more than two school devices' };
    const batch = { v: 1, type: 'event.batch', events: [sampleEvent('login-limit.denied', { clause })] };
    const decoded = decodeAgentToCollector(JSON.stringify(batch));
    expect(decoded.ok && decoded.value.type === 'event.batch' && decoded.value.events[0]?.clause).toEqual(clause);
  });

  it('rejects data that belongs to another event type', () => {
    const wrong = { ...sampleEvent('usb.connected'), data: EVENT_DATA_SAMPLES['session.logoff'] };
    const decoded = decodeAgentToCollector(JSON.stringify({ v: 1, type: 'event.batch', events: [wrong] }));
    expect(decoded.ok).toBe(false);
  });

  it.each([
    [0, 'INV_ERR_SCHEMA_RANGE'],
    [-1, 'INV_ERR_SCHEMA_RANGE'],
    [1.5, 'INV_ERR_SCHEMA_TYPE'],
    [2 ** 53, 'INV_ERR_SCHEMA_RANGE'],
    ['7', 'INV_ERR_SCHEMA_TYPE'],
  ])('rejects sequence number %p with %s', (seq, code) => {
    const decoded = decodeAgentToCollector(JSON.stringify({ v: 1, type: 'event.batch', events: [{ ...sampleEvent('agent.stopped'), seq }] }));
    expect([...new Set(codes(decoded))]).toEqual([code]);
  });
});
