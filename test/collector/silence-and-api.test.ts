import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { buildCollector } from '../../collector/collector';
import { createEnrollmentToken } from '../../collector/http-api';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import { ensureAdminToken } from '../../collector/bootstrap';
import { hashToken } from '../../collector/device-auth';
import { preset } from '../../shared/policy/presets';
import { tempDir } from '../support/cli';
import { RawClient, silentLogger } from '../support/harness';
import { sampleEvent } from '../support/samples';
import { readFileSync } from 'node:fs';
import { TEST_SECRET_KEY } from '../support/secret-key';

/** A collector whose clock the test moves by hand. */
async function collectorWithClock() {
  const dir = tempDir('collector');
  const clock = { now: Date.parse('2026-11-23T09:00:00Z') };
  const store = new SqliteStore(join(dir, 'collector.db'), { secretKey: TEST_SECRET_KEY });
  await store.migrate();
  const collector = buildCollector({
    store,
    logger: silentLogger(),
    policy: preset('basildon-primary')!,
    version: 'test',
    now: () => clock.now,
    silentAfterMs: 3_600_000,
    silenceCheckEveryMs: 3_600_000,
  });
  const { port } = await collector.listen(0, '127.0.0.1');
  await ensureAdminToken(store, dir, clock.now, silentLogger());
  const admin = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  const enroll = async () => {
    const client = new RawClient(`ws://127.0.0.1:${port}/agent`);
    await client.opened;
    const { token } = await createEnrollmentToken(store, clock.now, 't', 1, { approval: 'automatic' });
    client.send({
      v: 1,
      type: 'hello',
      agentVersion: '1',
      hostname: 'CLASS3-07',
      platform: 'win32',
      auth: { kind: 'enroll', token, installationId: `inst-${randomUUID()}` },
    });
    const { deviceId } = await client.next('enrolled');
    await client.next('welcome');
    return { client, deviceId };
  };
  const api = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      ...init,
      headers: { ...(init.token !== '' ? { authorization: `Bearer ${init.token ?? admin}` } : {}), 'content-type': 'application/json' },
    });
  return { clock, store, collector, enroll, api, close: async () => (await collector.close(), await store.close()) };
}

describe('device.silent', () => {
  it('is raised once per silence, by the collector, and again after the device has spoken and gone quiet again', async () => {
    const c = await collectorWithClock();
    const { client, deviceId } = await c.enroll();
    client.ws.close();
    await client.closed;

    c.clock.now += 30 * 60_000;
    expect(await c.collector.silence.check()).toBe(0);
    c.clock.now += 31 * 60_000;
    expect(await c.collector.silence.check()).toBe(1);
    expect(await c.collector.silence.check()).toBe(0);

    const silent = (await c.store.queryEvents({ type: 'device.silent', limit: 10 })).events;
    expect(silent).toEqual([
      expect.objectContaining({
        deviceId: 'collector',
        seq: 1,
        severity: 'warning',
        data: { deviceId, hostname: 'CLASS3-07', lastSeen: '2026-11-23T09:00:00.000Z' },
      }),
    ]);

    await c.store.deviceConnected(deviceId, {
      hostname: 'CLASS3-07',
      agentVersion: '1',
      policyRevision: 1,
      now: new Date(c.clock.now).toISOString(),
      instance: 'other',
      confirmed: true,
    });
    c.clock.now += 2 * 3_600_000;
    expect(await c.collector.silence.check()).toBe(1);
    expect((await c.store.queryEvents({ type: 'device.silent', limit: 10 })).events.map((e) => e.seq)).toEqual([1, 2]);
    await c.close();
  });
});

describe('the HTTP API', () => {
  it('needs a valid token for everything but /health, and an admin token to change things', async () => {
    const c = await collectorWithClock();
    expect((await c.api('/health', { token: '' })).status).toBe(200);
    for (const path of ['/api/devices', '/api/events', '/metrics']) {
      const res = await c.api(path, { token: '' });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: { code: 'INV_ERR_API_UNAUTHORIZED', message: expect.any(String) } });
      expect((await c.api(path, { token: 'inv_api_wrongwrongwrong' })).status).toBe(401);
    }
    await c.store.createApiToken({ id: 'ro', tokenHash: hashToken('inv_api_readonlyreadonly'), role: 'readonly', createdAt: '2026-11-23T09:00:00Z' });
    expect((await c.api('/api/devices', { token: 'inv_api_readonlyreadonly' })).status).toBe(200);
    expect((await c.api('/api/enrollment-tokens', { method: 'POST', body: '{}', token: 'inv_api_readonlyreadonly' })).status).toBe(403);
    await c.close();
  });

  it('lists devices with their state, and events with filters and a cursor', async () => {
    const c = await collectorWithClock();
    const { client, deviceId } = await c.enroll();
    const events = Array.from({ length: 5 }, (_, i) => ({
      ...sampleEvent(i % 2 ? 'usb.connected' : 'usb.storage.blocked'),
      id: randomUUID(),
      deviceId,
      seq: i + 1,
    }));
    client.send({ v: 1, type: 'event.batch', events });
    await client.next('ack');

    const devices = (await (await c.api('/api/devices')).json()) as { devices: Array<Record<string, unknown>> };
    expect(devices.devices).toEqual([
      {
        id: deviceId,
        hostname: 'CLASS3-07',
        platform: 'win32',
        lastSeen: expect.any(String),
        online: true,
        agentVersion: '1',
        policyVersion: null,
        revoked: false,
        approval: 'approved',
        enrolledAt: expect.any(String),
        enrolledFrom: expect.stringMatching(/127\.0\.0\.1/),
        tokenId: expect.any(String),
        decidedAt: null,
        decidedBy: null,
      },
    ]);

    const page1 = (await (await c.api(`/api/events?device=${deviceId}&limit=2`)).json()) as { events: Array<{ seq: number }>; next: string };
    const page2 = (await (await c.api(`/api/events?device=${deviceId}&limit=2&cursor=${page1.next}`)).json()) as {
      events: Array<{ seq: number }>;
      next: string;
    };
    expect([...page1.events, ...page2.events].map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    const blocked = (await (await c.api('/api/events?type=usb.storage.blocked')).json()) as { events: unknown[] };
    expect(blocked.events).toHaveLength(3);
    client.ws.close();
    await c.close();
  });

  it.each([
    ['limit=0', 'INV_ERR_API_BAD_QUERY'],
    ['limit=abc', 'INV_ERR_API_BAD_QUERY'],
    ['since=yesterday', 'INV_ERR_API_BAD_QUERY'],
    ['cursor=not-ours', 'INV_ERR_API_BAD_QUERY'],
    ['severity=apocalyptic', 'INV_ERR_API_BAD_QUERY'],
    ['colour=blue', 'INV_ERR_API_BAD_QUERY'],
  ])('refuses the query %s with 400 %s', async (query, code) => {
    const c = await collectorWithClock();
    const res = await c.api(`/api/events?${query}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    await c.close();
  });

  it('issues enrollment tokens that expire, and revokes them and devices', async () => {
    const c = await collectorWithClock();
    const created = (await (
      await c.api('/api/enrollment-tokens', { method: 'POST', body: JSON.stringify({ note: 'Year 3 laptops', expiresInHours: 2 }) })
    ).json()) as { id: string; token: string; expiresAt: string };
    expect(created.expiresAt).toBe('2026-11-23T11:00:00.000Z');
    expect((await c.api(`/api/enrollment-tokens/${created.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await c.api(`/api/enrollment-tokens/${created.id}`, { method: 'DELETE' })).status).toBe(404);
    const { deviceId, client } = await c.enroll();
    expect((await c.api(`/api/devices/${deviceId}/revoke`, { method: 'POST' })).status).toBe(200);
    client.ws.close();
    expect((await c.store.deviceAuth(deviceId))?.revoked).toBe(true);
    await c.close();
  });

  it('refuses a command it does not know, with the path of the mistake', async () => {
    const c = await collectorWithClock();
    const { deviceId, client } = await c.enroll();
    const res = await c.api(`/api/devices/${deviceId}/commands`, { method: 'POST', body: JSON.stringify({ command: { kind: 'format-disk' } }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toEqual({
      code: 'INV_ERR_API_BAD_QUERY',
      message: expect.stringContaining('$.command'),
    });
    client.ws.close();
    await c.close();
  });
});
