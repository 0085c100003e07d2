import { randomUUID } from 'node:crypto';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import type { CollectorStore } from '../../collector/store/store';
import { proofFor } from '../../node-common/device-proof';
import type { EventEnvelope } from '../../shared/protocol';
import { WebSocket } from 'ws';
import { eventually } from '../support/cli';
import { RawClient, type TestCollector, startTestCollector } from '../support/harness';
import { describePostgres, freshSchema } from '../support/postgres';
import { sampleEvent } from '../support/samples';
import { TEST_SECRET_KEY } from '../support/secret-key';

const hello = (auth: object) => ({ v: 1, type: 'hello', agentVersion: '0.1.0', hostname: 'CLASS3-01', platform: 'linux', policyRevision: 1, auth });

/**
 * The sequence rules of docs/protocol.md ("Sequence numbers"), through a real
 * socket on each store: a batch is strictly ascending; a resend of a stored
 * event is acknowledged; another event under a stored seq is refused whole;
 * a never-stored seq below the highest is a late event, stored.
 */
function sequenceRules(makeStore: () => Promise<{ store?: CollectorStore; drop?: () => Promise<void> }>): void {
  let c: TestCollector;
  let drop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const made = await makeStore();
    drop = made.drop;
    c = await startTestCollector(made.store ? { store: made.store } : {});
  });
  afterAll(async () => {
    await c.close();
    await drop?.();
  });

  interface Device {
    deviceId: string;
    secret: Buffer;
    client: RawClient;
  }

  async function enroll(): Promise<Device> {
    const client = new RawClient(c.agentUrl);
    await client.opened;
    client.send(hello({ kind: 'enroll', token: await c.enrollmentToken(), installationId: `inst-${randomUUID()}` }));
    const enrolled = await client.next('enrolled');
    await client.next('welcome');
    return { deviceId: enrolled.deviceId, secret: Buffer.from(enrolled.deviceSecret, 'base64url'), client };
  }

  async function reconnect(d: Device): Promise<{ client: RawClient; lastAckedSeq: number }> {
    const client = new RawClient(c.agentUrl);
    await client.opened;
    client.send(hello({ kind: 'device', deviceId: d.deviceId }));
    const { nonce } = await client.next('challenge');
    client.send({ v: 1, type: 'auth.proof', deviceId: d.deviceId, nonce, proof: proofFor(d.secret, nonce, d.deviceId) });
    const welcome = await client.next('welcome');
    return { client, lastAckedSeq: welcome.lastAckedSeq };
  }

  const event = (deviceId: string, seq: number): EventEnvelope => ({ ...sampleEvent('usb.connected'), id: randomUUID(), deviceId, seq }) as EventEnvelope;
  const batch = (events: EventEnvelope[]) => ({ v: 1, type: 'event.batch', events });
  const stored = async (deviceId: string) =>
    (await c.store.queryEvents({ device: deviceId, limit: 1000 })).events.map((e) => `${String(e.seq)}:${String(e.id)}`).sort();
  const key = (e: EventEnvelope) => `${e.seq}:${e.id}`;
  const errorCodes = (client: RawClient) => client.messages().flatMap((m) => (m.type === 'error' ? [m.error.code] : []));
  const acks = (client: RawClient) => client.messages().filter((m) => m.type === 'ack');
  /** Waits (bounded) for the batch's answer: a close, or an acknowledgement. */
  async function closeCode(client: RawClient): Promise<number | 'acknowledged'> {
    await eventually(() => (client.ws.readyState === WebSocket.CLOSED || acks(client).length > 0 ? true : undefined));
    return acks(client).length > 0 ? 'acknowledged' : (await client.closed).code;
  }

  it.each([
    ['descending', [5, 3]],
    ['a repeated seq', [7, 7]],
    ['ascending, then back', [1, 2, 9, 4]],
  ])('refuses a batch that is not strictly ascending (%s) with 4400 INV_ERR_BATCH_NOT_ASCENDING, storing and acknowledging none of it', async (_name, seqs) => {
    const d = await enroll();
    d.client.send(batch(seqs.map((s) => event(d.deviceId, s))));
    expect(await closeCode(d.client)).toBe(4400);
    expect(errorCodes(d.client)).toEqual(['INV_ERR_BATCH_NOT_ASCENDING']);
    expect(acks(d.client)).toEqual([]);
    expect(await stored(d.deviceId)).toEqual([]);
  });

  it('acknowledges a resend of stored events (same seq, same id), on the same connection and after reconnecting, storing each once', async () => {
    const d = await enroll();
    const first = [1, 2, 3].map((s) => event(d.deviceId, s));
    d.client.send(batch(first));
    expect((await d.client.next('ack')).upToSeq).toBe(3);
    d.client.send(batch(first));
    expect((await d.client.next('ack')).upToSeq).toBe(3);
    // The agent crashed before deleting what was acknowledged: it sends it all again on its next connection.
    d.client.ws.terminate();
    const again = await reconnect(d);
    expect(again.lastAckedSeq).toBe(3);
    const fourth = event(d.deviceId, 4);
    again.client.send(batch([first[1]!, first[2]!, fourth]));
    expect((await again.client.next('ack')).upToSeq).toBe(4);
    expect(await stored(d.deviceId)).toEqual([...first, fourth].map(key).sort());
    again.client.ws.close();
    await again.client.closed;
  });

  it('refuses another event under a stored seq with 4409 INV_ERR_SEQ_CONFLICT: nothing of its batch is stored or acknowledged', async () => {
    const d = await enroll();
    const first = [1, 2].map((s) => event(d.deviceId, s));
    d.client.send(batch(first));
    expect((await d.client.next('ack')).upToSeq).toBe(2);
    // seq 2 again, but not the event stored under it: acknowledging it would let the agent delete an event never stored.
    d.client.send(batch([event(d.deviceId, 2), event(d.deviceId, 3)]));
    expect(await closeCode(d.client)).toBe(4409);
    expect(errorCodes(d.client)).toEqual(['INV_ERR_SEQ_CONFLICT']);
    expect(acks(d.client)).toHaveLength(0);
    expect(await stored(d.deviceId)).toEqual(first.map(key).sort());
  });

  it('stores and acknowledges a never-stored seq below the highest (a late batch), and welcome still names the highest', async () => {
    const d = await enroll();
    const ten = event(d.deviceId, 10);
    const five = event(d.deviceId, 5);
    d.client.send(batch([ten]));
    expect((await d.client.next('ack')).upToSeq).toBe(10);
    d.client.send(batch([five]));
    expect((await d.client.next('ack')).upToSeq).toBe(5);
    const top = event(d.deviceId, Number.MAX_SAFE_INTEGER);
    const six = event(d.deviceId, 6);
    d.client.send(batch([top]));
    expect((await d.client.next('ack')).upToSeq).toBe(Number.MAX_SAFE_INTEGER);
    d.client.send(batch([six]));
    expect((await d.client.next('ack')).upToSeq).toBe(6);
    d.client.ws.close();
    await d.client.closed;
    const again = await reconnect(d);
    expect(again.lastAckedSeq).toBe(Number.MAX_SAFE_INTEGER);
    expect(await stored(d.deviceId)).toEqual([ten, five, top, six].map(key).sort());
    again.client.ws.close();
    await again.client.closed;
  });
}

describe('sequence rules on the agent socket (SQLite)', () => {
  sequenceRules(async () => ({}));
});

describePostgres('sequence rules on the agent socket (PostgreSQL)', () => {
  sequenceRules(async () => {
    const schema = await freshSchema();
    return { store: new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY }), drop: schema.drop };
  });
});
