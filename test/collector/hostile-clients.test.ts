import { randomUUID } from 'node:crypto';
import { proofFor } from '../../node-common/device-proof';
import type { RunningAgent } from '../../agent/agent';
import { eventually } from '../support/cli';
import { RawClient, type TestCollector, startTestAgent, startTestCollector } from '../support/harness';
import { sampleEvent } from '../support/samples';

const hello = (auth: object) => ({ v: 1, type: 'hello', agentVersion: '0.1.0', hostname: 'HOSTILE', platform: 'linux', policyRevision: 1, auth });

/**
 * Every hostile client gets its documented close code and stores nothing, while
 * a well-behaved agent on the same collector carries on undisturbed.
 */
describe('hostile clients on the agent socket', () => {
  let c: TestCollector;
  let good: RunningAgent;
  let goodDeviceId: string;
  let victim: { deviceId: string; secret: Buffer };

  beforeAll(async () => {
    c = await startTestCollector({
      limits: { helloTimeoutMs: 300, maxPayloadBytes: 64 * 1024, messagesPerSecond: 1000, messageBurst: 1000, pingIntervalMs: 400 },
    });
    good = await startTestAgent(c.agentUrl, await c.enrollmentToken());
    goodDeviceId = await eventually(async () => (await c.store.listDevices())[0]?.id);
    // A second enrolled device whose identity the hostile clients try to use or forge.
    const enrolling = new RawClient(c.agentUrl);
    await enrolling.opened;
    enrolling.send(hello({ kind: 'enroll', token: await c.enrollmentToken(), installationId: `inst-${randomUUID()}` }));
    const enrolled = await enrolling.next('enrolled');
    victim = { deviceId: enrolled.deviceId, secret: Buffer.from(enrolled.deviceSecret, 'base64url') };
    enrolling.ws.close();
    await enrolling.closed;
  });

  afterAll(async () => {
    await good.stop('test over');
    await c.close();
  });

  const storedFor = async (deviceId: string) => (await c.store.queryEvents({ device: deviceId, limit: 1000 })).events.length;

  async function authenticated(): Promise<RawClient> {
    const client = new RawClient(c.agentUrl);
    await client.opened;
    client.send(hello({ kind: 'device', deviceId: victim.deviceId }));
    const { nonce } = await client.next('challenge');
    client.send({ v: 1, type: 'auth.proof', deviceId: victim.deviceId, nonce, proof: proofFor(victim.secret, nonce, victim.deviceId) });
    await client.next('welcome');
    return client;
  }

  async function expectClose(client: RawClient, code: number, errorCode?: string): Promise<void> {
    expect((await client.closed).code).toBe(code);
    if (errorCode)
      expect(
        client
          .messages()
          .filter((m) => m.type === 'error')
          .map((m) => (m.type === 'error' ? m.error.code : '')),
      ).toContain(errorCode);
  }

  it('a client that never says hello is closed with 4408', async () => {
    const client = new RawClient(c.agentUrl);
    await expectClose(client, 4408, 'INV_ERR_HELLO_TIMEOUT');
  });

  it('a wrong secret is refused with 4401', async () => {
    const client = new RawClient(c.agentUrl);
    await client.opened;
    client.send(hello({ kind: 'device', deviceId: victim.deviceId }));
    const { nonce } = await client.next('challenge');
    client.send({ v: 1, type: 'auth.proof', deviceId: victim.deviceId, nonce, proof: proofFor(Buffer.alloc(32, 1), nonce, victim.deviceId) });
    await expectClose(client, 4401, 'INV_ERR_AUTH_FAILED');
  });

  it('a replayed proof from an earlier connection is refused with 4401', async () => {
    const first = new RawClient(c.agentUrl);
    await first.opened;
    first.send(hello({ kind: 'device', deviceId: victim.deviceId }));
    const old = await first.next('challenge');
    const recordedProof = { v: 1, type: 'auth.proof', deviceId: victim.deviceId, nonce: old.nonce, proof: proofFor(victim.secret, old.nonce, victim.deviceId) };
    first.ws.close();

    const replay = new RawClient(c.agentUrl);
    await replay.opened;
    replay.send(hello({ kind: 'device', deviceId: victim.deviceId }));
    await replay.next('challenge');
    replay.send(recordedProof);
    await expectClose(replay, 4401, 'INV_ERR_AUTH_FAILED');
  });

  it('a proof made for another device is refused with 4401', async () => {
    const client = new RawClient(c.agentUrl);
    await client.opened;
    client.send(hello({ kind: 'device', deviceId: victim.deviceId }));
    const { nonce } = await client.next('challenge');
    client.send({ v: 1, type: 'auth.proof', deviceId: goodDeviceId, nonce, proof: proofFor(victim.secret, nonce, goodDeviceId) });
    await expectClose(client, 4401);
  });

  it('an unknown device and an unknown enrollment token are refused with 4401', async () => {
    const unknown = new RawClient(c.agentUrl);
    await unknown.opened;
    unknown.send(hello({ kind: 'device', deviceId: 'dev-nobody' }));
    await expectClose(unknown, 4401, 'INV_ERR_AUTH_FAILED');
    const badToken = new RawClient(c.agentUrl);
    await badToken.opened;
    badToken.send(hello({ kind: 'enroll', token: 'inv_enroll_notarealtoken', installationId: 'inst-x' }));
    await expectClose(badToken, 4401, 'INV_ERR_ENROLL_TOKEN_INVALID');
  });

  it('events sent before authenticating are refused with 4409 and not stored', async () => {
    const before = await storedFor(victim.deviceId);
    const client = new RawClient(c.agentUrl);
    await client.opened;
    client.send({ v: 1, type: 'event.batch', events: [{ ...sampleEvent('agent.stopped'), deviceId: victim.deviceId }] });
    await expectClose(client, 4409, 'INV_ERR_NOT_AUTHENTICATED');
    expect(await storedFor(victim.deviceId)).toBe(before);
  });

  it('events forged for another device are refused with 4403 and not stored', async () => {
    const before = await storedFor(goodDeviceId);
    const client = await authenticated();
    client.send({ v: 1, type: 'event.batch', events: [{ ...sampleEvent('usb.storage.allowed'), id: randomUUID(), seq: 999_999, deviceId: goodDeviceId }] });
    await expectClose(client, 4403, 'INV_ERR_FORGED_DEVICE');
    expect(await storedFor(goodDeviceId)).toBe(before);
  });

  it("a result for another device's command is refused with 4403 and leaves the command open", async () => {
    await c.store.createCommand({ id: 'cmd-not-yours', deviceId: goodDeviceId, command: { kind: 'refresh-inventory' }, createdAt: new Date().toISOString() });
    const client = await authenticated();
    client.send({ v: 1, type: 'command.result', commandId: 'cmd-not-yours', ok: true });
    await expectClose(client, 4403, 'INV_ERR_FORGED_DEVICE');
    expect((await c.store.getCommand('cmd-not-yours'))?.completedAt ?? null).toBeNull();
  });

  const batchWithSeq = (seq: number) => (id: string) =>
    JSON.stringify({ v: 1, type: 'event.batch', events: [{ ...sampleEvent('agent.stopped'), deviceId: id, seq }] });
  it.each([
    ['malformed JSON', 4400, 'INV_ERR_INVALID_JSON', '{"v":1,"type":"event.batch","events":['],
    ['an unknown message type', 4400, 'INV_ERR_UNKNOWN_MESSAGE', JSON.stringify({ v: 1, type: 'format.disk' })],
    ['another protocol version', 4426, 'INV_ERR_PROTOCOL_VERSION', JSON.stringify({ v: 2, type: 'event.batch', events: [] })],
    ['sequence number 0', 4400, 'INV_ERR_SCHEMA_RANGE', batchWithSeq(0)],
    ['sequence number 2^53', 4400, 'INV_ERR_SCHEMA_RANGE', batchWithSeq(2 ** 53)],
    ['a __proto__ key', 4400, 'INV_ERR_FORBIDDEN_KEY', '{"v":1,"type":"event.batch","__proto__":{"x":1},"events":[]}'],
    ['a binary frame', 4400, 'INV_ERR_BINARY_FRAME', Buffer.from([1, 2, 3])],
    ['a binary frame holding valid JSON', 4400, 'INV_ERR_BINARY_FRAME', Buffer.from(JSON.stringify({ v: 1, type: 'login.release', sessionId: 's-1' }))],
    ['a message type only the collector sends', 4400, 'INV_ERR_UNKNOWN_MESSAGE', JSON.stringify({ v: 1, type: 'ack', upToSeq: 1 })],
    ['a message without a type', 4400, 'INV_ERR_UNKNOWN_MESSAGE', JSON.stringify({ v: 1 })],
  ] as Array<[string, number, string, string | Buffer | ((id: string) => string)]>)(
    '%s is refused with close %i (%s), storing nothing',
    async (_name, code, errorCode, frame) => {
      const before = await c.store.countEvents();
      const client = await authenticated();
      client.send(typeof frame === 'function' ? frame(victim.deviceId) : frame);
      await expectClose(client, code, errorCode);
      expect(await c.store.countEvents()).toBe(before);
    },
  );

  it.each([
    ['a byte that is never UTF-8', [0xff]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['an overlong encoding', [0xc0, 0xaf]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
  ])('a text frame that is not UTF-8 (%s) is refused with 4400 INV_ERR_INVALID_UTF8, not 1007', async (_name, bytes) => {
    const client = await authenticated();
    const frame = Buffer.concat([Buffer.from('{"v":1,"type":"login.release","sessionId":"'), Buffer.from(bytes), Buffer.from('"}')]);
    client.ws.send(frame, { binary: false });
    await expectClose(client, 4400, 'INV_ERR_INVALID_UTF8');
  });

  it('a connection replaced by a newer one for the same device is closed with 4410 INV_ERR_SUPERSEDED', async () => {
    const older = await authenticated();
    const newer = await authenticated();
    await expectClose(older, 4410, 'INV_ERR_SUPERSEDED');
    expect(newer.ws.readyState).toBe(newer.ws.OPEN);
    newer.ws.close();
    await newer.closed;
  });

  it('an oversized frame is closed with 1009 by the socket itself', async () => {
    const client = await authenticated();
    client.send('x'.repeat(65 * 1024));
    expect((await client.closed).code).toBe(1009);
  });

  it('a second hello is refused with 4409', async () => {
    const client = await authenticated();
    client.send(hello({ kind: 'device', deviceId: victim.deviceId }));
    await expectClose(client, 4409, 'INV_ERR_UNEXPECTED_MESSAGE');
  });

  it('a client that stops reading is cut off when it misses a ping', async () => {
    const client = await authenticated();
    const raw = (client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    await eventually(() => (c.collector.metrics.value('invigilator_agent_closes_total', { code: 'no-pong' }) > 0 ? true : undefined));
    raw.resume();
    expect((await client.closed).code).toBe(1006);
  });

  it('a revoked device is refused with 4403', async () => {
    const client = new RawClient(c.agentUrl);
    await client.opened;
    client.send(hello({ kind: 'enroll', token: await c.enrollmentToken(), installationId: `inst-${randomUUID()}` }));
    const enrolled = await client.next('enrolled');
    client.ws.close();
    await c.store.revokeDevice(enrolled.deviceId, new Date().toISOString());
    const again = new RawClient(c.agentUrl);
    await again.opened;
    again.send(hello({ kind: 'device', deviceId: enrolled.deviceId }));
    await expectClose(again, 4403, 'INV_ERR_DEVICE_REVOKED');
  });

  it('an enrollment interrupted before the identity was saved resumes as the same device, until that device has proved its secret', async () => {
    const installationId = `inst-${randomUUID()}`;
    const token = await c.enrollmentToken();
    const first = new RawClient(c.agentUrl);
    await first.opened;
    first.send(hello({ kind: 'enroll', token, installationId }));
    const given = await first.next('enrolled');
    first.ws.terminate(); // the agent "crashes" before saving identity.json

    const resumed = new RawClient(c.agentUrl);
    await resumed.opened;
    resumed.send(hello({ kind: 'enroll', token, installationId }));
    expect(await resumed.next('enrolled')).toEqual(given);
    resumed.ws.close();

    const proving = new RawClient(c.agentUrl);
    await proving.opened;
    proving.send(hello({ kind: 'device', deviceId: given.deviceId }));
    const { nonce } = await proving.next('challenge');
    proving.send({
      v: 1,
      type: 'auth.proof',
      deviceId: given.deviceId,
      nonce,
      proof: proofFor(Buffer.from(given.deviceSecret, 'base64url'), nonce, given.deviceId),
    });
    await proving.next('welcome');
    proving.ws.close();

    const again = new RawClient(c.agentUrl);
    await again.opened;
    again.send(hello({ kind: 'enroll', token, installationId }));
    await expectClose(again, 4401, 'INV_ERR_AUTH_FAILED');
    expect(again.messages().some((m) => m.type === 'enrolled')).toBe(false);
  });

  it('left the well-behaved agent connected and delivering throughout', async () => {
    const since = good.link.connectedSince;
    await good.record({ type: 'agent.stopped', severity: 'info', time: new Date().toISOString(), data: { reason: 'still here' } });
    await eventually(() => (good.outbox.pendingCount === 0 ? true : undefined));
    expect(good.link.currentState).toBe('ready');
    expect(good.link.connectedSince).toBe(since);
    const reasons = (await c.store.queryEvents({ device: goodDeviceId, type: 'agent.stopped', limit: 10 })).events.map(
      (e) => (e.data as { reason: string }).reason,
    );
    expect(reasons).toEqual(['still here']);
  });
});

describe('limits that protect the collector', () => {
  let c: TestCollector;

  beforeAll(async () => {
    c = await startTestCollector({ limits: { helloTimeoutMs: 5000, messagesPerSecond: 10, messageBurst: 20, maxHandshakes: 2, busyRetryMs: [1000, 2000] } });
  });
  afterAll(() => c.close());

  it('closes a client that floods past its rate with 4429', async () => {
    // 200 frames arrive far faster than 10 a second refill a bucket of 20.
    const client = new RawClient(c.agentUrl);
    await client.opened;
    client.send(hello({ kind: 'enroll', token: await c.enrollmentToken(), installationId: `inst-${randomUUID()}` }));
    await client.next('welcome');
    // A valid message that does not end the conversation, sent 200 times.
    for (let i = 0; i < 200; i++) client.send({ v: 1, type: 'login.release', sessionId: `s-${i}` });
    expect((await client.closed).code).toBe(4429);
  });

  it('pushes out the oldest connection that has said nothing when a newcomer needs its slot (busy, then 4503)', async () => {
    const waiting = [new RawClient(c.agentUrl), new RawClient(c.agentUrl)];
    await Promise.all(waiting.map((w) => w.opened));
    const newcomer = new RawClient(c.agentUrl);
    await newcomer.opened;
    const busy = await waiting[0]!.next('busy');
    expect(busy.retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(busy.retryAfterMs).toBeLessThanOrEqual(2000);
    expect((await waiting[0]!.closed).code).toBe(4503);
    // Like every other 44xx/45xx close, it comes with a coded error (after the busy that says when to come back).
    expect(waiting[0]!.messages().map((m) => (m.type === 'error' ? m.error.code : m.type))).toEqual(['INV_ERR_BUSY']);
    newcomer.send(hello({ kind: 'device', deviceId: 'dev-nobody' }));
    expect((await newcomer.closed).code).toBe(4401);
    waiting[1]!.ws.close();
    await waiting[1]!.closed;
  });

  it('tells a newcomer to come back later when every handshake in progress has spoken (busy, then 4503)', async () => {
    const enrolling = new RawClient(c.agentUrl);
    await enrolling.opened;
    enrolling.send(hello({ kind: 'enroll', token: await c.enrollmentToken(), installationId: `inst-${randomUUID()}` }));
    const { deviceId } = await enrolling.next('enrolled');
    await enrolling.next('welcome');
    enrolling.ws.close();
    await enrolling.closed;
    // Two connections said hello for devices and sit on their challenges: they cannot be pushed out.
    const other = new RawClient(c.agentUrl);
    await other.opened;
    other.send(hello({ kind: 'enroll', token: await c.enrollmentToken(), installationId: `inst-${randomUUID()}` }));
    const second = await other.next('enrolled');
    other.ws.close();
    await other.closed;
    const proving = [new RawClient(c.agentUrl), new RawClient(c.agentUrl)];
    await Promise.all(proving.map((p) => p.opened));
    proving[0]!.send(hello({ kind: 'device', deviceId }));
    proving[1]!.send(hello({ kind: 'device', deviceId: second.deviceId }));
    await Promise.all(proving.map((p) => p.next('challenge')));
    const refused = new RawClient(c.agentUrl);
    const busy = await refused.next('busy');
    expect(busy.retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(busy.retryAfterMs).toBeLessThanOrEqual(2000);
    expect((await refused.closed).code).toBe(4503);
    expect(refused.messages().map((m) => (m.type === 'error' ? m.error.code : m.type))).toEqual(['INV_ERR_BUSY']);
    for (const p of proving) p.ws.close();
    await Promise.all(proving.map((p) => p.closed));
    // Room again once the handshakes in progress are gone.
    const later = new RawClient(c.agentUrl);
    await later.opened;
    later.send(hello({ kind: 'device', deviceId: 'dev-nobody' }));
    expect((await later.closed).code).toBe(4401);
  });
});
