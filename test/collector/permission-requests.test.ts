import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureAdminToken } from '../../collector/bootstrap';
import { buildCollector } from '../../collector/collector';
import { type CommandBus, PostgresCommandBus } from '../../collector/command-bus';
import { hashToken } from '../../collector/device-auth';
import { createEnrollmentToken } from '../../collector/http-api';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import type { CollectorStore } from '../../collector/store/store';
import { proofFor } from '../../node-common/device-proof';
import { OFFLINE_CODE_MAX_MINUTES, checkOfflineCode } from '../../node-common/offline-code';
import { preset } from '../../shared/policy/presets';
import type { CollectorToAgent } from '../../shared/protocol';
import { eventually, tempDir } from '../support/cli';
import { RawClient, silentLogger } from '../support/harness';
import { describePostgres, freshSchema } from '../support/postgres';
import { TEST_SECRET_KEY } from '../support/secret-key';

const T0 = Date.parse('2026-11-23T09:00:00Z');
const DAY = 24 * 3_600_000;

const stick = { vendorId: '0781', productId: '5567', serial: 'X1', label: 'SanDisk Cruzer Blade' };

function permissionRequest(requestId: string, subject: Record<string, string> = stick) {
  return { v: 1, type: 'permission.request', requestId, kind: 'usb-device', subject, user: { name: 'amy.p' }, reason: 'my homework is on it' };
}

/** A collector on a real store, listening on loopback, whose clock the test moves by hand. */
async function startCollector(options: { store?: CollectorStore; bus?: CommandBus; clock?: { now: number } } = {}) {
  const dir = tempDir('permissions');
  const clock = options.clock ?? { now: T0 };
  const store = options.store ?? new SqliteStore(join(dir, 'collector.db'), { secretKey: TEST_SECRET_KEY });
  await store.migrate();
  const collector = buildCollector({
    store,
    ...(options.bus ? { bus: options.bus } : {}),
    logger: silentLogger(),
    policy: preset('basildon-primary')!,
    version: 'test',
    now: () => clock.now,
    silenceCheckEveryMs: 3_600_000,
  });
  const { port } = await collector.listen(0, '127.0.0.1');
  await ensureAdminToken(store, dir, clock.now, silentLogger());
  let admin = '';
  try {
    admin = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  } catch {
    // Another collector on the same database made the admin token; the test gives this one its own.
    admin = `inv_api_${randomUUID().replace(/-/g, '')}`;
    await store.createApiToken({
      id: `api-${randomUUID().slice(0, 8)}`,
      tokenHash: hashToken(admin),
      role: 'admin',
      createdAt: new Date(clock.now).toISOString(),
    });
  }
  const agentUrl = `ws://127.0.0.1:${port}/agent`;

  /** Enrolls a new device over the socket: its id, its secret and the open connection. */
  const enroll = async (hostname = 'CLASS3-07') => {
    const client = new RawClient(agentUrl);
    await client.opened;
    const { token } = await createEnrollmentToken(store, clock.now, 't', 1, { approval: 'automatic' });
    client.send({
      v: 1,
      type: 'hello',
      agentVersion: '1',
      hostname,
      platform: 'win32',
      auth: { kind: 'enroll', token, installationId: `inst-${randomUUID()}` },
    });
    const { deviceId, deviceSecret } = await client.next('enrolled');
    await client.next('welcome');
    return { client, deviceId, secret: Buffer.from(deviceSecret, 'base64url') };
  };

  /** Connects as a known device (hello, challenge, proof) and waits for welcome. */
  const reconnect = async (deviceId: string, secret: Buffer) => {
    const client = new RawClient(agentUrl);
    await client.opened;
    client.send({ v: 1, type: 'hello', agentVersion: '1', hostname: 'CLASS3-07', platform: 'win32', policyRevision: 1, auth: { kind: 'device', deviceId } });
    const { nonce } = await client.next('challenge');
    client.send({ v: 1, type: 'auth.proof', deviceId, nonce, proof: proofFor(secret, nonce, deviceId) });
    await client.next('welcome');
    return client;
  };

  const api = async (path: string, init: { method?: string; body?: unknown; token?: string } = {}) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${init.token ?? admin}`, 'content-type': 'application/json' },
      ...(init.body !== undefined ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } } };
  };

  /** Waits (bounded) until the collector has stored the request. */
  const stored = (deviceId: string, requestId: string) => eventually(() => store.getPermissionRequest(deviceId, requestId));

  return {
    clock,
    store,
    collector,
    enroll,
    reconnect,
    api,
    stored,
    close: async () => {
      await collector.close();
      await store.close();
    },
  };
}

type Harness = Awaited<ReturnType<typeof startCollector>>;

const decisionPath = (deviceId: string, requestId: string) => `/api/permission-requests/${deviceId}/${requestId}/decision`;

/** The messages of the given types a client has received so far, in order. */
const received = (client: RawClient, ...types: Array<CollectorToAgent['type']>) => client.messages().filter((m) => types.includes(m.type));

describe('permission requests (SQLite)', () => {
  let c: Harness;
  beforeEach(async () => {
    c = await startCollector();
  });
  afterEach(async () => {
    await c.close();
  });

  it('are stored, listed, approved with an expiry, and reach the agent as usb-allow then permission.decision', async () => {
    const { client, deviceId } = await c.enroll();
    client.send(permissionRequest('r-1'));
    await c.stored(deviceId, 'r-1');
    // The connection is still open: a request is not an error any more.
    expect(received(client, 'error')).toEqual([]);

    const list = await c.api('/api/permission-requests?status=pending');
    expect(list.status).toBe(200);
    expect(list.body).toEqual({
      requests: [
        {
          deviceId,
          requestId: 'r-1',
          kind: 'usb-device',
          subject: stick,
          user: { name: 'amy.p' },
          reason: 'my homework is on it',
          createdAt: '2026-11-23T09:00:00.000Z',
          status: 'pending',
          decidedAt: null,
          decidedBy: null,
          note: null,
          expiresAt: null,
          scope: null,
          decisionDeliveredAt: null,
        },
      ],
      next: null,
    });
    expect((await c.api(`/api/permission-requests/${deviceId}/r-1`)).body).toEqual((list.body.requests as unknown[])[0]);

    c.clock.now += 5 * 60_000;
    const expiresAt = new Date(T0 + 7 * DAY).toISOString();
    const approved = await c.api(decisionPath(deviceId, 'r-1'), { method: 'POST', body: { decision: 'approved', note: 'for this week', expiresAt } });
    expect(approved.status).toBe(200);
    const entry = {
      id: expect.stringMatching(/^allow-[A-Za-z0-9]+$/),
      vendorId: '0781',
      productId: '5567',
      serial: 'X1',
      expiresAt,
      devices: [deviceId],
      note: expect.stringContaining('my homework is on it'),
    };
    expect(approved.body).toEqual({
      request: expect.objectContaining({
        status: 'approved',
        decidedAt: '2026-11-23T09:05:00.000Z',
        decidedBy: expect.stringMatching(/^api-/),
        expiresAt,
        scope: 'device',
      }),
      entry,
      commandIds: [expect.any(String)],
    });
    expect((approved.body.entry as { note: string }).note).toContain((approved.body.request as { decidedBy: string }).decidedBy);

    const cmd = await client.next('command');
    expect(cmd).toEqual({
      v: 1,
      type: 'command',
      commandId: (approved.body.commandIds as string[])[0],
      issuedAt: '2026-11-23T09:05:00.000Z',
      command: { kind: 'usb-allow', entry },
    });
    expect(await client.next('permission.decision')).toEqual({
      v: 1,
      type: 'permission.decision',
      requestId: 'r-1',
      decision: 'approved',
      note: 'for this week',
      expiresAt,
    });
    expect(received(client, 'command', 'permission.decision')).toEqual([]);
    await eventually(async () =>
      (await c.store.getPermissionRequest(deviceId, 'r-1'))?.decisionDeliveredAt === '2026-11-23T09:05:00.000Z' ? true : undefined,
    );

    // A second decision, either way, is refused.
    const again = await c.api(decisionPath(deviceId, 'r-1'), { method: 'POST', body: { decision: 'refused' } });
    expect(again.status).toBe(409);
    expect(again.body.error?.code).toBe('INV_ERR_PERMISSION_DECIDED');

    // A resend of a decided request (the agent lost the answer) gets the decision again, and is stored once.
    client.send(permissionRequest('r-1'));
    expect(await client.next('permission.decision')).toMatchObject({ requestId: 'r-1', decision: 'approved' });
    expect(((await c.api(`/api/permission-requests?device=${deviceId}`)).body.requests as unknown[]).length).toBe(1);
    client.ws.close();
  });

  it('refuse with a note: the agent is told, and nothing is allowed', async () => {
    const { client, deviceId } = await c.enroll();
    client.send(permissionRequest('r-2'));
    await c.stored(deviceId, 'r-2');
    const refused = await c.api(decisionPath(deviceId, 'r-2'), { method: 'POST', body: { decision: 'refused', note: 'Please use OneDrive instead.' } });
    expect(refused.status).toBe(200);
    expect(refused.body).toMatchObject({
      request: { status: 'refused', note: 'Please use OneDrive instead.', scope: null, expiresAt: null },
      entry: null,
      commandIds: [],
    });
    expect(await client.next('permission.decision')).toEqual({
      v: 1,
      type: 'permission.decision',
      requestId: 'r-2',
      decision: 'refused',
      note: 'Please use OneDrive instead.',
    });
    expect(received(client, 'command')).toEqual([]);
    expect((await c.api('/api/permission-requests?status=refused')).body.requests).toHaveLength(1);
    expect((await c.api('/api/permission-requests?status=pending')).body.requests).toHaveLength(0);
    client.ws.close();
  });

  it('delivers a decision made while the agent was offline when it reconnects, after its commands; scope all reaches every device', async () => {
    const a = await c.enroll('CLASS3-01');
    const b = await c.enroll('CLASS3-02');
    a.client.send(permissionRequest('r-3'));
    await c.stored(a.deviceId, 'r-3');
    a.client.ws.close();
    await a.client.closed;
    await eventually(() => (c.collector.agents.isOnline(a.deviceId) ? undefined : true));

    const approved = await c.api(decisionPath(a.deviceId, 'r-3'), { method: 'POST', body: { decision: 'approved', scope: 'all' } });
    expect(approved.status).toBe(200);
    expect(approved.body.entry).not.toHaveProperty('devices');
    expect(approved.body.entry).not.toHaveProperty('expiresAt');
    expect(approved.body.commandIds).toHaveLength(2);

    // The online device gets the allowlist entry at once (keyed to itself: test/collector/enrollment.test.ts), but no decision: it did not ask.
    expect((await b.client.next('command')).command).toMatchObject({ kind: 'usb-allow', entry: { id: (approved.body.entry as { id: string }).id } });
    expect((await c.store.getPermissionRequest(a.deviceId, 'r-3'))?.decisionDeliveredAt).toBeNull();

    c.clock.now += 60 * 60_000;
    const back = await c.reconnect(a.deviceId, a.secret);
    // Both arrive after welcome (reconnect waited for it), the allowlist entry before the decision that relies on it.
    const types = await eventually(() => {
      const t = back.messages().map((m) => m.type);
      return t.includes('command') && t.includes('permission.decision') ? t : undefined;
    });
    expect(types.indexOf('command')).toBeLessThan(types.indexOf('permission.decision'));
    expect(back.messages().find((m) => m.type === 'command')).toMatchObject({ command: { kind: 'usb-allow', entry: approved.body.entry } });
    expect(back.messages().find((m) => m.type === 'permission.decision')).toEqual({
      v: 1,
      type: 'permission.decision',
      requestId: 'r-3',
      decision: 'approved',
    });
    await eventually(async () =>
      (await c.store.getPermissionRequest(a.deviceId, 'r-3'))?.decisionDeliveredAt === '2026-11-23T10:00:00.000Z' ? true : undefined,
    );
    back.ws.close();
    b.client.ws.close();
  });

  it.each([
    ['no decision', {}],
    ['an unknown decision', { decision: 'maybe' }],
    ['an unknown field', { decision: 'approved', forever: true }],
    ['an expiry that is not a time', { decision: 'approved', expiresAt: 'next tuesday' }],
    ['an expiry in the past', { decision: 'approved', expiresAt: '2026-11-23T08:59:00Z' }],
    ['an expiry more than a year ahead', { decision: 'approved', expiresAt: new Date(T0 + 366 * DAY).toISOString() }],
    ['an unknown scope', { decision: 'approved', scope: 'school' }],
    ['a refusal with an expiry', { decision: 'refused', expiresAt: new Date(T0 + DAY).toISOString() }],
    ['a refusal with a scope', { decision: 'refused', scope: 'all' }],
    ['a note that is too long', { decision: 'refused', note: 'x'.repeat(1001) }],
  ])('refuses a decision with %s: 400 INV_ERR_API_BAD_QUERY, and the request stays pending', async (_what, body) => {
    const { client, deviceId } = await c.enroll();
    client.send(permissionRequest('r-4'));
    await c.stored(deviceId, 'r-4');
    const res = await c.api(decisionPath(deviceId, 'r-4'), { method: 'POST', body });
    expect(res.status).toBe(400);
    expect(res.body.error).toEqual({ code: 'INV_ERR_API_BAD_QUERY', message: expect.stringContaining('$') });
    expect((await c.store.getPermissionRequest(deviceId, 'r-4'))?.status).toBe('pending');
    client.ws.close();
  });

  it('answers bad JSON, unknown requests, readonly tokens and bad list queries with coded errors', async () => {
    const { client, deviceId } = await c.enroll();
    client.send(permissionRequest('r-5'));
    await c.stored(deviceId, 'r-5');
    const badJson = await c.api(decisionPath(deviceId, 'r-5'), { method: 'POST', body: '{"decision":' });
    expect([badJson.status, badJson.body.error?.code]).toEqual([400, 'INV_ERR_INVALID_JSON']);
    const unknown = await c.api(decisionPath(deviceId, 'r-nobody'), { method: 'POST', body: { decision: 'refused' } });
    expect([unknown.status, unknown.body.error?.code]).toEqual([404, 'INV_ERR_PERMISSION_NOT_FOUND']);
    const badId = await c.api('/api/permission-requests/dev%3Cscript%3E/r-5');
    expect([badId.status, badId.body.error?.code]).toEqual([404, 'INV_ERR_PERMISSION_NOT_FOUND']);
    expect((await c.api(`/api/permission-requests/${deviceId}/r-nobody`)).status).toBe(404);

    await c.store.createApiToken({ id: 'ro', tokenHash: hashToken('inv_api_readonlyreadonly'), role: 'readonly', createdAt: '2026-11-23T09:00:00Z' });
    const readonly = await c.api(decisionPath(deviceId, 'r-5'), { method: 'POST', body: { decision: 'approved' }, token: 'inv_api_readonlyreadonly' });
    expect([readonly.status, readonly.body.error?.code]).toEqual([403, 'INV_ERR_API_FORBIDDEN']);
    expect((await c.api('/api/permission-requests', { token: 'inv_api_readonlyreadonly' })).status).toBe(200);
    expect((await c.api('/api/permission-requests', { token: 'inv_api_wrongwrongwrong' })).status).toBe(401);

    for (const query of ['status=maybe', 'limit=0', 'cursor=not-ours', 'colour=blue']) {
      const res = await c.api(`/api/permission-requests?${query}`);
      expect([query, res.status, res.body.error?.code]).toEqual([query, 400, 'INV_ERR_API_BAD_QUERY']);
    }
    expect((await c.store.getPermissionRequest(deviceId, 'r-5'))?.status).toBe('pending');
    client.ws.close();
  });

  it('will not approve a USB request whose ids the allowlist cannot hold, but can refuse it', async () => {
    const { client, deviceId } = await c.enroll();
    client.send(permissionRequest('r-6', { label: 'a phone' }));
    await c.stored(deviceId, 'r-6');
    const res = await c.api(decisionPath(deviceId, 'r-6'), { method: 'POST', body: { decision: 'approved' } });
    expect([res.status, res.body.error?.code]).toEqual([400, 'INV_ERR_API_BAD_QUERY']);
    expect((await c.api(decisionPath(deviceId, 'r-6'), { method: 'POST', body: { decision: 'refused' } })).status).toBe(200);
    client.ws.close();
  });

  it('pages the list newest first with cursors', async () => {
    const { client, deviceId } = await c.enroll();
    for (let i = 1; i <= 5; i++) client.send(permissionRequest(`r-p${i}`));
    await c.stored(deviceId, 'r-p5');
    const seen: string[] = [];
    let cursor = '';
    for (let page = 0; page < 5; page++) {
      const res = await c.api(`/api/permission-requests?device=${deviceId}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...(res.body.requests as Array<{ requestId: string }>).map((r) => r.requestId));
      if (!res.body.next) break;
      cursor = res.body.next as string;
    }
    expect(seen).toEqual(['r-p5', 'r-p4', 'r-p3', 'r-p2', 'r-p1']);
    client.ws.close();
  });
});

describe('offline codes', () => {
  let c: Harness;
  beforeEach(async () => {
    c = await startCollector();
  });
  afterEach(async () => {
    await c.close();
  });

  it('are issued for one computer and one USB device, and checked by the agent code', async () => {
    const a = await c.enroll('CLASS3-01');
    const b = await c.enroll('CLASS3-02');
    const res = await c.api(`/api/devices/${a.deviceId}/offline-codes`, {
      method: 'POST',
      body: { vendorId: '0781', productId: '55AB', serial: 'X1', validMinutes: 60 },
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      code: expect.stringMatching(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/),
      expiresAt: '2026-11-23T10:00:00.000Z',
      deviceId: a.deviceId,
      vendorId: '0781',
      productId: '55ab',
      serial: 'X1',
    });
    const code = res.body.code as string;
    const subject = { deviceId: a.deviceId, vendorId: '0781', productId: '55ab', serial: 'X1' };
    expect(checkOfflineCode(a.secret, subject, code, c.clock.now)).toMatchObject({ ok: true, expiresAt: '2026-11-23T10:00:00.000Z' });
    // Another computer's secret, another computer, another stick: no.
    expect(checkOfflineCode(b.secret, subject, code, c.clock.now)).toEqual({ ok: false, code: 'INV_ERR_OFFLINE_CODE_INVALID' });
    expect(checkOfflineCode(b.secret, { ...subject, deviceId: b.deviceId }, code, c.clock.now)).toEqual({ ok: false, code: 'INV_ERR_OFFLINE_CODE_INVALID' });
    expect(checkOfflineCode(a.secret, { ...subject, serial: 'X2' }, code, c.clock.now)).toEqual({ ok: false, code: 'INV_ERR_OFFLINE_CODE_INVALID' });
    expect(checkOfflineCode(a.secret, subject, code, c.clock.now + 61 * 60_000)).toEqual({ ok: false, code: 'INV_ERR_OFFLINE_CODE_EXPIRED' });

    // Without a serial, for the longest time allowed, at a later (fake) time.
    c.clock.now += 90 * 60_000;
    const noSerial = await c.api(`/api/devices/${a.deviceId}/offline-codes`, {
      method: 'POST',
      body: { vendorId: '0781', productId: '5567', validMinutes: OFFLINE_CODE_MAX_MINUTES },
    });
    expect(noSerial.status).toBe(201);
    expect(noSerial.body).toMatchObject({ serial: null, expiresAt: new Date(c.clock.now + OFFLINE_CODE_MAX_MINUTES * 60_000).toISOString() });
    expect(checkOfflineCode(a.secret, { deviceId: a.deviceId, vendorId: '0781', productId: '5567' }, noSerial.body.code as string, c.clock.now).ok).toBe(true);
    a.client.ws.close();
    b.client.ws.close();
  });

  it.each([
    ['no body', undefined],
    ['a vendor id that is not hex', { vendorId: 'zzzz', productId: '5567', validMinutes: 10 }],
    ['a product id of five digits', { vendorId: '0781', productId: '55670', validMinutes: 10 }],
    ['zero minutes', { vendorId: '0781', productId: '5567', validMinutes: 0 }],
    ['too many minutes', { vendorId: '0781', productId: '5567', validMinutes: OFFLINE_CODE_MAX_MINUTES + 1 }],
    ['fractional minutes', { vendorId: '0781', productId: '5567', validMinutes: 1.5 }],
    ['an unknown field', { vendorId: '0781', productId: '5567', validMinutes: 10, forever: true }],
  ])('refuses %s with 400 INV_ERR_API_BAD_QUERY', async (_what, body) => {
    const { client, deviceId } = await c.enroll();
    const res = await c.api(`/api/devices/${deviceId}/offline-codes`, { method: 'POST', ...(body ? { body } : {}) });
    expect([res.status, res.body.error?.code]).toEqual([400, 'INV_ERR_API_BAD_QUERY']);
    client.ws.close();
  });

  it('are refused for unknown and revoked devices, and for readonly tokens', async () => {
    const body = { vendorId: '0781', productId: '5567', validMinutes: 10 };
    const unknown = await c.api('/api/devices/dev-nobody/offline-codes', { method: 'POST', body });
    expect([unknown.status, unknown.body.error?.code]).toEqual([404, 'INV_ERR_API_NOT_FOUND']);
    const { client, deviceId } = await c.enroll();
    await c.store.createApiToken({ id: 'ro', tokenHash: hashToken('inv_api_readonlyreadonly'), role: 'readonly', createdAt: '2026-11-23T09:00:00Z' });
    const readonly = await c.api(`/api/devices/${deviceId}/offline-codes`, { method: 'POST', body, token: 'inv_api_readonlyreadonly' });
    expect([readonly.status, readonly.body.error?.code]).toEqual([403, 'INV_ERR_API_FORBIDDEN']);
    expect((await c.api(`/api/devices/${deviceId}/revoke`, { method: 'POST' })).status).toBe(200);
    const revoked = await c.api(`/api/devices/${deviceId}/offline-codes`, { method: 'POST', body });
    expect([revoked.status, revoked.body.error?.code]).toEqual([409, 'INV_ERR_DEVICE_REVOKED']);
    client.ws.close();
  });
});

describePostgres('permission requests with two collectors on one PostgreSQL', () => {
  it('a decision made through one collector reaches the agent connected to the other, and only one of two racing decisions wins', async () => {
    const schema = await freshSchema();
    const clock = { now: T0 };
    const storeA = new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY });
    const storeB = new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY });
    await Promise.all([storeA.migrate(), storeB.migrate()]);
    const busA = await PostgresCommandBus.start(schema.url, storeA.pool, silentLogger());
    const busB = await PostgresCommandBus.start(schema.url, storeB.pool, silentLogger());
    const a = await startCollector({ store: storeA, bus: busA, clock });
    const b = await startCollector({ store: storeB, bus: busB, clock });
    try {
      const { client, deviceId } = await a.enroll();
      client.send(permissionRequest('r-pg'));
      await a.stored(deviceId, 'r-pg');
      expect(((await b.api('/api/permission-requests?status=pending')).body.requests as unknown[]).length).toBe(1);

      const expiresAt = new Date(T0 + 30 * DAY).toISOString();
      const [viaA, viaB] = await Promise.all([
        a.api(decisionPath(deviceId, 'r-pg'), { method: 'POST', body: { decision: 'refused', note: 'no' } }),
        b.api(decisionPath(deviceId, 'r-pg'), { method: 'POST', body: { decision: 'approved', expiresAt } }),
      ]);
      expect([viaA.status, viaB.status].sort()).toEqual([200, 409]);
      const loser = viaA.status === 409 ? viaA : viaB;
      expect(loser.body.error?.code).toBe('INV_ERR_PERMISSION_DECIDED');
      const winner = viaA.status === 200 ? 'refused' : 'approved';

      const decision = await client.next('permission.decision');
      expect(decision.decision).toBe(winner);
      if (winner === 'approved') expect((await client.next('command')).command).toMatchObject({ kind: 'usb-allow', entry: { expiresAt, devices: [deviceId] } });
      expect(received(client, 'permission.decision')).toEqual([]);

      // A second request, decided only through B while the device is held by A.
      client.send(permissionRequest('r-pg2'));
      await a.stored(deviceId, 'r-pg2');
      expect((await b.api(decisionPath(deviceId, 'r-pg2'), { method: 'POST', body: { decision: 'approved', expiresAt } })).status).toBe(200);
      expect(await client.next('permission.decision')).toMatchObject({ requestId: 'r-pg2', decision: 'approved', expiresAt });
      expect((await client.next('command')).command).toMatchObject({ kind: 'usb-allow', entry: { vendorId: '0781', productId: '5567' } });
      client.ws.close();
    } finally {
      await a.close();
      await b.close();
      await schema.drop();
    }
  });
});
