import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureAdminToken, ensureEnrollmentToken } from '../../collector/bootstrap';
import { buildCollector } from '../../collector/collector';
import { hashToken } from '../../collector/device-auth';
import { createEnrollmentToken } from '../../collector/http-api';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import type { CollectorStore } from '../../collector/store/store';
import { proofFor } from '../../node-common/device-proof';
import { usbAllowDigest, usbAllowKey } from '../../node-common/usb-allow-digest';
import { preset } from '../../shared/policy/presets';
import { collectorToAgent } from '../../shared/protocol';
import { validate } from '../../shared/schema';
import { eventually, tempDir } from '../support/cli';
import { RawClient, silentLogger } from '../support/harness';
import { POSTGRES_SKIP_REASON, POSTGRES_URL, freshSchema } from '../support/postgres';
import { TEST_SECRET_KEY } from '../support/secret-key';
import { sampleEvent } from '../support/samples';

/**
 * Who may enroll, and when a device counts (docs/architecture.md, "Enrollment"). Every test runs on
 * both stores, through real connections on loopback, with a clock the test moves by hand.
 */

const T0 = Date.parse('2026-11-23T09:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const stick = { vendorId: '0781', productId: '5567', serial: 'X1', label: 'SanDisk Cruzer Blade' };

const stores: Array<[string, () => Promise<{ store: CollectorStore; drop: () => Promise<void> }>]> = [
  [
    'SQLite',
    async () => {
      const dir = tempDir('enroll-sqlite');
      return {
        store: new SqliteStore(join(dir, 'collector.db'), { secretKey: TEST_SECRET_KEY }),
        drop: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  ],
];
if (POSTGRES_URL) {
  stores.push([
    'PostgreSQL',
    async () => {
      const schema = await freshSchema();
      return { store: new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY }), drop: schema.drop };
    },
  ]);
} else {
  process.stdout.write(`enrollment: the PostgreSQL variant is skipped: ${POSTGRES_SKIP_REASON}\n`);
}

async function startCollector(makeStore: (typeof stores)[number][1]) {
  const { store, drop } = await makeStore();
  await store.migrate();
  const dir = tempDir('enroll');
  const clock = { now: T0 };
  const collector = buildCollector({
    store,
    logger: silentLogger(),
    policy: preset('basildon-primary')!,
    version: 'test',
    now: () => clock.now,
    silenceCheckEveryMs: 3_600_000,
    leaseSweepEveryMs: 3_600_000,
  });
  const { port } = await collector.listen(0, '127.0.0.1');
  await ensureAdminToken(store, dir, clock.now, silentLogger());
  const admin = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  const agentUrl = `ws://127.0.0.1:${port}/agent`;
  const clients: RawClient[] = [];
  const open = async () => {
    const client = new RawClient(agentUrl);
    clients.push(client);
    await client.opened;
    return client;
  };

  /** A hello with the token, from a new installation (or the given one): the connection, and the device it was given if any. */
  const enroll = async (token: string, options: { hostname?: string; installationId?: string } = {}) => {
    const client = await open();
    const auth = { kind: 'enroll', token, installationId: options.installationId ?? `inst-${randomUUID()}` };
    client.send({ v: 1, type: 'hello', agentVersion: '1', hostname: options.hostname ?? 'CLASS3-01', platform: 'win32', auth });
    let closed = false;
    void client.closed.then(() => (closed = true));
    // A pending device is sent `enrolled` and then closed at once: look for the message until the close.
    const enrolled = await eventually(() => client.messages().find((m) => m.type === 'enrolled') ?? (closed ? null : undefined));
    const device = enrolled?.type === 'enrolled' ? { deviceId: enrolled.deviceId, secret: Buffer.from(enrolled.deviceSecret, 'base64url') } : undefined;
    return { client, device };
  };

  /** Connects as a known device (hello, challenge, proof): welcomed, or closed with a coded error. */
  const reconnect = async (device: { deviceId: string; secret: Buffer }) => {
    const client = await open();
    client.send({ v: 1, type: 'hello', agentVersion: '1', hostname: 'CLASS3-01', platform: 'win32', auth: { kind: 'device', deviceId: device.deviceId } });
    let closed = false;
    void client.closed.then(() => (closed = true));
    const until = (type: 'challenge' | 'welcome') => eventually(() => client.messages().find((m) => m.type === type) ?? (closed ? null : undefined));
    const challenge = await until('challenge');
    if (challenge?.type !== 'challenge') return { client, welcomed: false };
    const { nonce } = challenge;
    client.send({ v: 1, type: 'auth.proof', deviceId: device.deviceId, nonce, proof: proofFor(device.secret, nonce, device.deviceId) });
    return { client, welcomed: (await until('welcome')) !== null };
  };

  const api = async (path: string, init: { method?: string; body?: unknown; token?: string } = {}) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${init.token ?? admin}`, 'content-type': 'application/json' },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string } } };
  };

  return {
    clock,
    store,
    enroll,
    reconnect,
    api,
    close: async () => {
      for (const c of clients) c.ws.close();
      await collector.close();
      await store.close();
      await drop();
    },
  };
}

type Running = Awaited<ReturnType<typeof startCollector>>;

/** The coded error a connection was closed with, and the close code. */
const closedWith = async (client: RawClient) => {
  const { code } = await client.closed;
  return { code, error: (await client.next('error')).error.code };
};

describe.each(stores)('who may enroll, and when a device counts (%s)', (_name, makeStore) => {
  let c: Running;
  afterEach(async () => c?.close());

  it('enrolls at most maxUses devices with one token, and none more', async () => {
    c = await startCollector(makeStore);
    const { token } = await createEnrollmentToken(c.store, c.clock.now, 'Year 3 laptops', 24, { approval: 'automatic', maxUses: 2 });

    const enrolled = [await c.enroll(token), await c.enroll(token)];
    const third = await c.enroll(token);

    expect(enrolled.map((e) => e.device)).toEqual([expect.any(Object), expect.any(Object)]);
    expect(third.device).toBeUndefined();
    expect(await closedWith(third.client)).toEqual({ code: 4401, error: 'INV_ERR_ENROLL_TOKEN_USED_UP' });
    expect((await c.store.listDevices()).map((d) => d.tokenId)).toHaveLength(2);
  });

  it('enrolls at most perMinute devices a minute, however many arrive at once', async () => {
    c = await startCollector(makeStore);
    const { token } = await createEnrollmentToken(c.store, c.clock.now, 'lab', 24, { approval: 'automatic', perMinute: 3 });

    const burst = await Promise.all(Array.from({ length: 10 }, () => c.enroll(token)));

    expect(burst.filter((b) => b.device)).toHaveLength(3);
    const refused = burst.filter((b) => !b.device);
    expect(await Promise.all(refused.map((r) => closedWith(r.client)))).toEqual(Array(7).fill({ code: 4429, error: 'INV_ERR_ENROLL_RATE_LIMITED' }));
    c.clock.now += 60_000;
    expect((await c.enroll(token)).device).toBeDefined();
    expect(await c.store.listDevices()).toHaveLength(4);
  });

  it('gives an installation that crashed before saving its identity the same device again without spending a use', async () => {
    c = await startCollector(makeStore);
    const { token } = await createEnrollmentToken(c.store, c.clock.now, 'one laptop', 24, { approval: 'automatic', maxUses: 1 });
    const first = await c.enroll(token, { installationId: 'inst-amys-laptop' });
    first.client.ws.close();

    const again = await c.enroll(token, { installationId: 'inst-amys-laptop' });

    expect(again.device).toEqual(first.device);
    expect((await c.enroll(token)).device).toBeUndefined();
  });

  it('keeps a device from a manual token out until the network manager approves it: no events, claims or requests, nothing sent to it', async () => {
    c = await startCollector(makeStore);
    const { token } = await createEnrollmentToken(c.store, c.clock.now, 'installer', 24);

    const rogue = await c.enroll(token, { hostname: 'HEAD-TEACHER-PC' });

    // It has its identity, is told to come back in a minute, and is closed before it can say anything.
    expect(rogue.device).toBeDefined();
    expect(await rogue.client.next('busy')).toMatchObject({ retryAfterMs: 60_000 });
    expect(await closedWith(rogue.client)).toEqual({ code: 4403, error: 'INV_ERR_DEVICE_PENDING' });
    expect(rogue.client.messages().map((m) => m.type)).toEqual(['enrolled']);
    const back = await c.reconnect(rogue.device!);
    expect(back.welcomed).toBe(false);
    expect(await closedWith(back.client)).toEqual({ code: 4403, error: 'INV_ERR_DEVICE_PENDING' });

    // The network manager sees it waiting, with what it said and where it came from.
    const pending = await c.api('/api/devices?approval=pending');
    expect(pending.body.devices).toEqual([
      expect.objectContaining({
        id: rogue.device!.deviceId,
        hostname: 'HEAD-TEACHER-PC',
        approval: 'pending',
        enrolledFrom: expect.stringMatching(/127\.0\.0\.1/),
      }),
    ]);
    // Nothing can be queued for it while it waits.
    const command = await c.api(`/api/devices/${rogue.device!.deviceId}/commands`, { method: 'POST', body: { command: { kind: 'refresh-inventory' } } });
    expect([command.status, command.body.error?.code]).toEqual([409, 'INV_ERR_DEVICE_PENDING']);
    const code = await c.api(`/api/devices/${rogue.device!.deviceId}/offline-codes`, {
      method: 'POST',
      body: { vendorId: '0781', productId: '5567', validMinutes: 60 },
    });
    expect([code.status, code.body.error?.code]).toEqual([409, 'INV_ERR_DEVICE_PENDING']);
    expect(await c.store.countEvents()).toBe(0);
  });

  it('lets an approved device in on its next connection, and a refused one never', async () => {
    c = await startCollector(makeStore);
    const { token } = await createEnrollmentToken(c.store, c.clock.now, 'installer', 24);
    const laptop = (await c.enroll(token, { hostname: 'CLASS3-07' })).device!;
    const rogue = (await c.enroll(token, { hostname: 'HEAD-TEACHER-PC' })).device!;

    expect(await c.api(`/api/devices/${laptop.deviceId}/approve`, { method: 'POST' })).toEqual({
      status: 200,
      body: { deviceId: laptop.deviceId, approval: 'approved' },
    });
    expect(await c.api(`/api/devices/${rogue.deviceId}/refuse`, { method: 'POST' })).toEqual({
      status: 200,
      body: { deviceId: rogue.deviceId, approval: 'refused' },
    });

    const welcomed = await c.reconnect(laptop);
    expect(welcomed.welcomed).toBe(true);
    welcomed.client.send({ v: 1, type: 'event.batch', events: [{ ...sampleEvent('agent.started'), deviceId: laptop.deviceId, seq: 1 }] });
    expect(await welcomed.client.next('ack')).toMatchObject({ upToSeq: 1 });
    const refused = await c.reconnect(rogue);
    expect(await closedWith(refused.client)).toEqual({ code: 4403, error: 'INV_ERR_DEVICE_REVOKED' });

    // Decided once; unknown devices are not found; deciding needs an admin token.
    expect((await c.api(`/api/devices/${laptop.deviceId}/refuse`, { method: 'POST' })).body.error?.code).toBe('INV_ERR_DEVICE_NOT_PENDING');
    expect((await c.api('/api/devices/dev-nobody/approve', { method: 'POST' })).status).toBe(404);
    await c.store.createApiToken({ id: 'ro', tokenHash: hashToken('inv_api_readonlyreadonly'), role: 'readonly', createdAt: iso(T0) });
    expect((await c.api(`/api/devices/${laptop.deviceId}/approve`, { method: 'POST', token: 'inv_api_readonlyreadonly' })).status).toBe(403);
    expect((await c.api('/api/devices')).body.devices).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: laptop.deviceId, approval: 'approved', decidedBy: expect.any(String) }),
        expect.objectContaining({ id: rogue.deviceId, approval: 'refused', revoked: true }),
      ]),
    );
  });

  it('keeps two rogue devices enrolled with the school’s token from taking Amy’s places', async () => {
    c = await startCollector(makeStore);
    const installer = (await createEnrollmentToken(c.store, c.clock.now, 'installer', 24)).token;
    const amysLaptop = (await c.enroll((await createEnrollmentToken(c.store, c.clock.now, 'Amy', 1, { approval: 'automatic' })).token)).client;
    await amysLaptop.next('welcome');

    for (const name of ['ROGUE-1', 'ROGUE-2']) {
      const rogue = await c.enroll(installer, { hostname: name });
      // Its claim for Amy, sent at once, arrives at a connection that is already closing.
      rogue.client.send({ v: 1, type: 'login.claim', claimId: 'k-1', user: { name: 'amy.p' }, sessionId: 's-1', role: 'pupil', at: iso(T0) });
      expect((await closedWith(rogue.client)).error).toBe('INV_ERR_DEVICE_PENDING');
    }
    amysLaptop.send({ v: 1, type: 'login.claim', claimId: 'k-amy', user: { name: 'amy.p' }, sessionId: '3', role: 'pupil', at: iso(T0) });

    expect(await amysLaptop.next('login.verdict')).toMatchObject({ claimId: 'k-amy', granted: true });
    expect(await c.store.liveLeases({ user: 'amy.p', now: iso(T0) })).toHaveLength(1);
  });

  it('makes tokens with a use limit, a rate and an approval mode, defaults documented, and lists them without the token', async () => {
    c = await startCollector(makeStore);

    const made = await c.api('/api/enrollment-tokens', { method: 'POST', body: { note: 'Year 3 laptops' } });
    const fast = await c.api('/api/enrollment-tokens', { method: 'POST', body: { approval: 'automatic', maxUses: 1, perMinute: 1, expiresInHours: 1 } });

    expect(made).toEqual({
      status: 201,
      body: {
        id: expect.any(String),
        token: expect.stringMatching(/^inv_enroll_/),
        expiresAt: iso(T0 + 90 * 24 * 3_600_000),
        approval: 'manual',
        maxUses: 100,
        perMinute: 10,
      },
    });
    expect(fast.body).toMatchObject({ approval: 'automatic', maxUses: 1, perMinute: 1 });
    await c.enroll(fast.body.token as string);
    const listed = await c.api('/api/enrollment-tokens');
    expect(listed.status).toBe(200);
    expect(listed.body.tokens).toHaveLength(2);
    expect(listed.body.tokens).toEqual(
      expect.arrayContaining([
        {
          id: made.body.id,
          note: 'Year 3 laptops',
          createdAt: iso(T0),
          expiresAt: made.body.expiresAt,
          revokedAt: null,
          approval: 'manual',
          maxUses: 100,
          uses: 0,
          perMinute: 10,
          lastUsedAt: null,
        },
        {
          id: fast.body.id,
          note: '',
          createdAt: iso(T0),
          expiresAt: iso(T0 + 3_600_000),
          revokedAt: null,
          approval: 'automatic',
          maxUses: 1,
          uses: 1,
          perMinute: 1,
          lastUsedAt: iso(T0),
        },
      ]),
    );
    expect(JSON.stringify(listed.body)).not.toContain(made.body.token as string);
    for (const bad of [{ maxUses: 0 }, { maxUses: 10_001 }, { perMinute: 0 }, { approval: 'sometimes' }]) {
      expect((await c.api('/api/enrollment-tokens', { method: 'POST', body: bad })).body.error?.code).toBe('INV_ERR_API_BAD_QUERY');
    }
  });

  it('keeps the installers’ token in the data dir: manual by default, replaced when used up, revoked when the approval mode changes', async () => {
    c = await startCollector(makeStore);
    const dir = tempDir('token-file');
    const first = await ensureEnrollmentToken(c.store, dir, c.clock.now);
    expect(await ensureEnrollmentToken(c.store, dir, c.clock.now)).toEqual(first);
    expect(await c.store.findUsableEnrollmentToken(hashToken(first.token), iso(T0))).toMatchObject({ approval: 'manual', maxUses: 100 });

    const automatic = await ensureEnrollmentToken(c.store, dir, c.clock.now, 'automatic');

    expect(automatic.token).not.toBe(first.token);
    expect(readFileSync(automatic.path, 'utf8').trim()).toBe(automatic.token);
    expect(await c.store.findUsableEnrollmentToken(hashToken(first.token), iso(T0))).toBeUndefined();
    const id = (await c.store.findUsableEnrollmentToken(hashToken(automatic.token), iso(T0)))!.id;
    for (let i = 0; i < 100; i++) await c.store.useEnrollmentToken(id, iso(T0 + i * 60_000));
    expect((await ensureEnrollmentToken(c.store, dir, c.clock.now, 'automatic')).token).not.toBe(automatic.token);
  });

  it('sends an approval for every computer only to approved computers, each keyed to itself, never the stick’s ids', async () => {
    c = await startCollector(makeStore);
    const automatic = (await createEnrollmentToken(c.store, c.clock.now, 'school', 1, { approval: 'automatic' })).token;
    const asker = await c.enroll(automatic, { hostname: 'CLASS3-01' });
    const other = await c.enroll(automatic, { hostname: 'CLASS3-02' });
    const pending = (await c.enroll((await createEnrollmentToken(c.store, c.clock.now, 'installer', 1)).token)).device!;
    await Promise.all([asker.client.next('welcome'), other.client.next('welcome')]);
    asker.client.send({ v: 1, type: 'permission.request', requestId: 'r-1', kind: 'usb-device', subject: stick, user: { name: 'amy.p' }, reason: 'homework' });
    await eventually(() => c.store.getPermissionRequest(asker.device!.deviceId, 'r-1'));

    const approved = await c.api(`/api/permission-requests/${asker.device!.deviceId}/r-1/decision`, {
      method: 'POST',
      body: { decision: 'approved', scope: 'all' },
    });

    expect(approved.status).toBe(200);
    expect(approved.body.commandIds).toHaveLength(2);
    const toAsker = await asker.client.next('command');
    expect(toAsker.command).toEqual({ kind: 'usb-allow', entry: approved.body.entry });
    const toOther = await other.client.next('command');
    expect(validate(collectorToAgent, toOther).ok).toBe(true);
    expect(toOther.command).toEqual({
      kind: 'usb-allow',
      entry: {
        id: (approved.body.entry as { id: string }).id,
        match: { scheme: 'hmac-sha256-v1', digest: usbAllowDigest(usbAllowKey(other.device!.secret), stick), serial: true },
        note: expect.not.stringMatching(/amy|homework/),
      },
    });
    expect(JSON.stringify(toOther)).not.toMatch(/0781|5567|"X1"/);
    expect(await c.store.undeliveredCommands(pending.deviceId)).toEqual([]);
  });
});
