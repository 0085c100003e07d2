import { randomUUID } from 'node:crypto';
import type { EventEnvelope } from '../../shared/protocol';
import { DEFAULT_AGENT_SOCKET_LIMITS } from '../../collector/agent-socket';
import { WebSocket } from 'ws';
import { eventually } from '../support/cli';
import { RawClient, startTestCollector } from '../support/harness';
import { sampleEvent } from '../support/samples';

const hello = (auth: object) => ({ v: 1, type: 'hello', agentVersion: '0.1.0', hostname: 'CLASS3-01', platform: 'linux', auth });

/** `welcome` tells the agent the limits of its connection, so it can pace itself instead of being closed for them. */
describe("welcome carries the connection's limits", () => {
  const running: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const c of running.splice(0)) await c.close();
  });

  async function welcomed(limits: Parameters<typeof startTestCollector>[0]) {
    const c = await startTestCollector(limits);
    running.push(c);
    const client = new RawClient(c.agentUrl);
    await client.opened;
    client.send(hello({ kind: 'enroll', token: await c.enrollmentToken(), installationId: `inst-${randomUUID()}` }));
    const { deviceId } = await client.next('enrolled');
    return { c, client, deviceId, welcome: await client.next('welcome') };
  }

  it('says the defaults', async () => {
    const { client, welcome } = await welcomed({});
    expect(welcome.limits).toEqual({ messagesPerSecond: 50, messageBurst: 200, maxFrameBytes: 1024 * 1024, maxEventsPerBatch: 500 });
    expect(DEFAULT_AGENT_SOCKET_LIMITS).toMatchObject({ messagesPerSecond: 50, messageBurst: 200, maxPayloadBytes: 1024 * 1024 });
    client.ws.close();
    await client.closed;
  });

  it('says what this collector was configured with, and holds the agent to it', async () => {
    const { c, client, deviceId, welcome } = await welcomed({
      limits: { messagesPerSecond: 7, messageBurst: 9, maxPayloadBytes: 64 * 1024, maxEventsPerBatch: 10 },
    });
    expect(welcome.limits).toEqual({ messagesPerSecond: 7, messageBurst: 9, maxFrameBytes: 64 * 1024, maxEventsPerBatch: 10 });
    const events = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ ...sampleEvent('usb.connected'), id: randomUUID(), deviceId, seq: from + i }) as EventEnvelope);
    client.send({ v: 1, type: 'event.batch', events: events(1, 10) });
    expect((await client.next('ack')).upToSeq).toBe(10);
    client.send({ v: 1, type: 'event.batch', events: events(11, 11) });
    await eventually(() => (client.ws.readyState === WebSocket.CLOSED || client.messages().some((m) => m.type === 'ack') ? true : undefined));
    expect(client.messages().filter((m) => m.type === 'ack')).toEqual([]);
    expect((await client.closed).code).toBe(4400);
    expect(client.messages().flatMap((m) => (m.type === 'error' ? [m.error.code] : []))).toEqual(['INV_ERR_SCHEMA_RANGE']);
    expect(await c.store.countEvents()).toBe(10);
  });
});
