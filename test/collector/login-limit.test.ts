import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureAdminToken } from '../../collector/bootstrap';
import { buildCollector } from '../../collector/collector';
import { hashToken } from '../../collector/device-auth';
import { createEnrollmentToken } from '../../collector/http-api';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import { preset } from '../../shared/policy/presets';
import type { Policy } from '../../shared/policy/schema';
import { tempDir } from '../support/cli';
import { RawClient, silentLogger } from '../support/harness';
import { TEST_SECRET_KEY } from '../support/secret-key';

const T0 = Date.parse('2026-11-23T09:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

/** Basildon's policy (at most two devices per login, leases of 300 s), with staff allowed any number. */
function policyWithUnlimitedStaff(): Policy {
  const policy = structuredClone(preset('basildon-primary')!);
  policy.loginLimit.roles = { staff: { maxDevices: null, leaseSeconds: 600 } };
  return policy;
}

/** A collector on a real SQLite file, listening on loopback, whose clock the test moves by hand: no test sleeps for a lease to expire. */
async function startCollector() {
  const dir = tempDir('login-limit');
  const clock = { now: T0 };
  const store = new SqliteStore(join(dir, 'collector.db'), { secretKey: TEST_SECRET_KEY });
  await store.migrate();
  const collector = buildCollector({
    store,
    logger: silentLogger(),
    policy: policyWithUnlimitedStaff(),
    version: 'test',
    now: () => clock.now,
    silenceCheckEveryMs: 3_600_000,
    leaseSweepEveryMs: 3_600_000,
  });
  const { port } = await collector.listen(0, '127.0.0.1');
  await ensureAdminToken(store, dir, clock.now, silentLogger());
  const admin = readFileSync(join(dir, 'admin-token'), 'utf8').trim();
  const clients: RawClient[] = [];

  /** A new device, enrolled over the socket, with its connection open and authenticated. */
  const device = async (hostname: string) => {
    const client = new RawClient(`ws://127.0.0.1:${port}/agent`);
    clients.push(client);
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
    const { deviceId } = await client.next('enrolled');
    await client.next('welcome');
    let claims = 0;
    return {
      client,
      deviceId,
      /** Sends login.claim and waits for its verdict. */
      claim: async (user: string, sessionId: string, extra: { role?: string; ref?: string } = {}) => {
        const claimId = `k-${++claims}`;
        const base = { v: 1, claimId, user: { name: user }, sessionId, role: extra.role ?? 'pupil', at: iso(clock.now) };
        client.send(extra.ref ? { ...base, type: 'login.evict', ref: extra.ref } : { ...base, type: 'login.claim' });
        const verdict = await client.next('login.verdict');
        expect(verdict.claimId).toBe(claimId);
        return verdict;
      },
    };
  };

  const api = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`http://127.0.0.1:${port}${path}`, { ...init, headers: { authorization: `Bearer ${init.token ?? admin}`, 'content-type': 'application/json' } });

  return {
    clock,
    store,
    agentUrl: `ws://127.0.0.1:${port}/agent`,
    device,
    api,
    close: async () => {
      for (const c of clients) c.ws.close();
      await collector.close();
      await store.close();
    },
  };
}

type Running = Awaited<ReturnType<typeof startCollector>>;

describe('login claims over the agent socket', () => {
  let c: Running;
  beforeEach(async () => (c = await startCollector()));
  afterEach(async () => c.close());

  it('grants two devices per login and refuses a third, listing the user’s other computers', async () => {
    const [a, b, third] = [await c.device('CLASS3-01'), await c.device('LIBRARY-07'), await c.device('CLASS4-02')];

    expect(await a.claim('amy.p', 's-1')).toMatchObject({ granted: true, limit: 2, others: [], leaseSeconds: 300 });
    c.clock.now += 1000;
    expect(await b.claim('Amy.P', 's-9')).toMatchObject({ granted: true, others: [] });
    const refused = await third.claim('AMY.P', 's-4');

    expect(refused).toEqual({
      v: 1,
      type: 'login.verdict',
      claimId: 'k-1',
      granted: false,
      limit: 2,
      others: [
        { hostname: 'CLASS3-01', since: iso(T0), ref: expect.any(String) },
        { hostname: 'LIBRARY-07', since: iso(T0 + 1000), ref: expect.any(String) },
      ],
      leaseSeconds: 300,
    });
    // Another session on a device the user already holds is not another device.
    expect((await a.claim('amy.p', 's-2')).granted).toBe(true);
  });

  it('applies the role’s own settings, and the default role’s to a role the policy does not know', async () => {
    const devices = [await c.device('A'), await c.device('B'), await c.device('C')];

    for (const d of devices) expect(await d.claim('mr.jones', 's-1', { role: 'staff' })).toMatchObject({ granted: true, limit: null, leaseSeconds: 600 });
    await devices[0]!.claim('bea', 's-2', { role: 'wizard' });
    await devices[1]!.claim('bea', 's-2', { role: 'wizard' });

    expect(await devices[2]!.claim('bea', 's-2', { role: 'wizard' })).toMatchObject({ granted: false, limit: 2, leaseSeconds: 300 });
    expect((await c.store.liveLeases({ user: 'bea', now: iso(c.clock.now) })).map((l) => l.role)).toEqual(['pupil', 'pupil']);
  });

  it('frees a place when a lease runs out unrenewed, and keeps it while it is renewed', async () => {
    const [a, b, third] = [await c.device('A'), await c.device('B'), await c.device('C')];
    await a.claim('amy.p', 's-1');
    await b.claim('amy.p', 's-1');

    c.clock.now += 200_000;
    a.client.send({ v: 1, type: 'login.renew', sessionIds: ['s-1'] });
    await a.claim('zed', 's-2'); // answered after the renewal was handled
    c.clock.now += 200_000; // b's lease (300 s) has run out; a's was renewed at 200 s, until 500 s.
    const verdict = await third.claim('amy.p', 's-1');

    expect(verdict).toMatchObject({ granted: true, others: [] });
    expect((await c.store.liveLeases({ user: 'amy.p', now: iso(c.clock.now) })).map((l) => l.deviceId).sort()).toEqual([a.deviceId, third.deviceId].sort());
    expect(a.client.messages().filter((m) => m.type === 'error')).toEqual([]);
  });

  it('lets a device renew and release only its own leases', async () => {
    const [a, b, third] = [await c.device('A'), await c.device('B'), await c.device('C')];
    await a.claim('amy.p', 's-1');
    await b.claim('amy.p', 's-1');

    // b names a's session, and a session it never claimed: neither is b's to renew.
    b.client.send({ v: 1, type: 'login.renew', sessionIds: ['s-1', 's-404'] });
    expect((await b.client.next('error')).error.code).toBe('INV_ERR_LEASE_NOT_FOUND');
    // third "releases" s-1, which it does not hold: a's and b's leases stay.
    third.client.send({ v: 1, type: 'login.release', sessionId: 's-1' });
    expect((await third.claim('amy.p', 's-1')).granted).toBe(false);

    a.client.send({ v: 1, type: 'login.release', sessionId: 's-1' });
    await a.claim('zed', 's-2'); // answered after the release was handled

    expect((await third.claim('amy.p', 's-1')).granted).toBe(true);
    expect(b.client.ws.readyState).toBe(b.client.ws.OPEN);
  });

  it('tells a device that renews a lease which has run out to claim again', async () => {
    const a = await c.device('A');
    await a.claim('amy.p', 's-1');

    c.clock.now += 300_000;
    a.client.send({ v: 1, type: 'login.renew', sessionIds: ['s-1'] });

    expect((await a.client.next('error')).error).toEqual({ code: 'INV_ERR_LEASE_NOT_FOUND', message: expect.stringContaining('s-1') });
    expect((await a.claim('amy.p', 's-1')).granted).toBe(true);
  });

  it('ends the other session a refused user chose, and grants this one in the same decision', async () => {
    const [a, b, third] = [await c.device('CLASS3-01'), await c.device('LIBRARY-07'), await c.device('CLASS4-02')];
    await a.claim('amy.p', 's-1');
    await b.claim('amy.p', 's-9');
    const refused = await third.claim('amy.p', 's-4');
    expect(refused.granted).toBe(false);

    const verdict = await third.claim('amy.p', 's-4', { ref: refused.others.find((o) => o.hostname === 'LIBRARY-07')!.ref! });

    expect(verdict).toMatchObject({ granted: true, others: [] });
    expect((await c.store.liveLeases({ user: 'amy.p', now: iso(c.clock.now) })).map((l) => l.deviceId).sort()).toEqual([a.deviceId, third.deviceId].sort());
    const logoff = await b.client.next('command');
    expect(logoff.command).toEqual({ kind: 'logoff', target: { scope: 'session', sessionId: 's-9' }, reason: 'amy.p chose to sign in on CLASS4-02 instead' });
  });

  it('does not end another user’s session, whatever reference an eviction carries', async () => {
    const [a, b, third] = [await c.device('A'), await c.device('B'), await c.device('C')];
    await a.claim('amy.p', 's-1');
    await b.claim('amy.p', 's-1');
    await third.claim('bob', 's-7');
    const amyRefused = await third.claim('amy.p', 's-2');

    // Amy's reference, presented for Bob on the same session, is bound to Amy: Bob's claim alone is decided.
    const verdict = await third.claim('bob', 's-2', { ref: amyRefused.others[0]!.ref! });

    expect(verdict).toMatchObject({ granted: true, others: [] });
    expect((await c.store.liveLeases({ user: 'amy.p', now: iso(c.clock.now) })).map((l) => l.deviceId).sort()).toEqual([a.deviceId, b.deviceId].sort());
    for (const d of [a, b, third]) expect(await c.store.undeliveredCommands(d.deviceId)).toEqual([]);
  });

  it('refuses a claim without a user name with a coded error, and keeps the connection', async () => {
    const a = await c.device('A');

    a.client.send({ v: 1, type: 'login.claim', claimId: 'k-0', user: { name: '  ' }, sessionId: 's-1', role: 'pupil', at: iso(T0) });

    expect((await a.client.next('error')).error.code).toBe('INV_ERR_SCHEMA_RANGE');
    expect((await a.claim('amy.p', 's-1')).granted).toBe(true);
  });

  it('answers INV_ERR_STORE_FAILED when the store cannot decide, and carries on', async () => {
    const a = await c.device('A');
    jest.spyOn(c.store, 'claimLease').mockRejectedValueOnce(new Error('disk I/O error'));

    a.client.send({ v: 1, type: 'login.claim', claimId: 'k-0', user: { name: 'amy.p' }, sessionId: 's-1', role: 'pupil', at: iso(T0) });

    expect((await a.client.next('error')).error.code).toBe('INV_ERR_STORE_FAILED');
    expect((await a.claim('amy.p', 's-1')).granted).toBe(true);
  });

  it('closes a connection that claims before authenticating', async () => {
    const stranger = new RawClient(c.agentUrl);
    await stranger.opened;

    stranger.send({ v: 1, type: 'login.claim', claimId: 'k-0', user: { name: 'amy.p' }, sessionId: 's-1', role: 'pupil', at: iso(T0) });

    expect((await stranger.closed).code).toBe(4409);
  });
});

describe('the sessions API', () => {
  let c: Running;
  beforeEach(async () => (c = await startCollector()));
  afterEach(async () => c.close());

  const readonlyToken = 'inv_api_readonlyreadonly';
  const addReadonlyToken = () => c.store.createApiToken({ id: 'ro', tokenHash: hashToken(readonlyToken), role: 'readonly', createdAt: iso(T0) });

  it('lists live sessions: all, by user in any case, by device', async () => {
    const [a, b] = [await c.device('CLASS3-01'), await c.device('LIBRARY-07')];
    await a.claim('Amy.P', 's-1');
    c.clock.now += 1000;
    await a.claim('bob', 's-2');
    c.clock.now += 1000;
    await b.claim('amy.p', 's-9', { role: 'staff' });
    await addReadonlyToken();

    const byUser = await c.api('/api/sessions?user=AMY.P', { token: readonlyToken });

    expect(byUser.status).toBe(200);
    expect(await byUser.json()).toEqual({
      sessions: [
        { deviceId: a.deviceId, sessionId: 's-1', user: 'Amy.P', role: 'pupil', hostname: 'CLASS3-01', since: iso(T0), expiresAt: iso(T0 + 300_000) },
        { deviceId: b.deviceId, sessionId: 's-9', user: 'amy.p', role: 'staff', hostname: 'LIBRARY-07', since: iso(T0 + 2000), expiresAt: iso(T0 + 602_000) },
      ],
      next: null,
    });
    const all = (await (await c.api('/api/sessions')).json()) as { sessions: Array<{ sessionId: string }> };
    expect(all.sessions.map((s) => s.sessionId)).toEqual(['s-1', 's-2', 's-9']);
    const onA = (await (await c.api(`/api/sessions?device=${a.deviceId}`)).json()) as { sessions: Array<{ sessionId: string }> };
    expect(onA.sessions.map((s) => s.sessionId)).toEqual(['s-1', 's-2']);

    c.clock.now += 299_000; // the pupils' leases (300 s) have run out; the staff lease (600 s) has not
    const later = (await (await c.api('/api/sessions')).json()) as { sessions: Array<{ sessionId: string }> };
    expect(later.sessions.map((s) => s.sessionId)).toEqual(['s-9']);
  });

  it('refuses a bad query with a coded error, and a request without a token', async () => {
    for (const query of ['?user=', '?device=%3Cb%3E', '?limit=0', '?since=today']) {
      const res = await c.api(`/api/sessions${query}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INV_ERR_API_BAD_QUERY');
    }
    expect((await c.api('/api/sessions', { token: 'inv_api_wrongwrongwrong' })).status).toBe(401);
  });

  it('signs a user out of every device where they hold a live session, through the command path', async () => {
    const [a, b, other] = [await c.device('A'), await c.device('B'), await c.device('C')];
    await a.claim('Amy.P', 's-1');
    await a.claim('amy.p', 's-2');
    await b.claim('AMY.P', 's-9');
    await other.claim('bob', 's-1');

    const res = await c.api('/api/sessions/logoff', { method: 'POST', body: JSON.stringify({ scope: 'user', user: 'amy.p', reason: 'end of lesson' }) });

    expect(res.status).toBe(202);
    const { commands } = (await res.json()) as { commands: Array<{ commandId: string; deviceId: string }> };
    expect(commands.map((x) => x.deviceId).sort()).toEqual([a.deviceId, b.deviceId].sort());
    const toA = await a.client.next('command');
    expect(toA.command).toEqual({ kind: 'logoff', target: { scope: 'user', user: 'Amy.P' }, reason: 'end of lesson' });
    expect((await b.client.next('command')).command).toEqual({ kind: 'logoff', target: { scope: 'user', user: 'AMY.P' }, reason: 'end of lesson' });
    expect(await c.store.undeliveredCommands(other.deviceId)).toEqual([]);

    a.client.send({ v: 1, type: 'command.result', commandId: toA.commandId, ok: true });
    await a.claim('zed', 's-3'); // answered after the result was stored
    expect(await (await c.api(`/api/commands/${toA.commandId}`)).json()).toMatchObject({ id: toA.commandId, deviceId: a.deviceId, ok: true });
  });

  it('signs out one session or a whole device', async () => {
    const a = await c.device('A');
    await a.claim('amy.p', 's-1');

    const one = await c.api('/api/sessions/logoff', { method: 'POST', body: JSON.stringify({ scope: 'session', deviceId: a.deviceId, sessionId: 's-1' }) });
    const all = await c.api('/api/sessions/logoff', { method: 'POST', body: JSON.stringify({ scope: 'device', deviceId: a.deviceId }) });

    expect([one.status, all.status]).toEqual([202, 202]);
    expect((await a.client.next('command')).command).toEqual({
      kind: 'logoff',
      target: { scope: 'session', sessionId: 's-1' },
      reason: 'signed out by the network manager',
    });
    expect((await a.client.next('command')).command).toMatchObject({ kind: 'logoff', target: { scope: 'device' } });
  });

  it('needs an admin token, a valid body and something to sign out', async () => {
    const a = await c.device('A');
    await addReadonlyToken();
    const post = (body: unknown, token?: string) => c.api('/api/sessions/logoff', { method: 'POST', body: JSON.stringify(body), ...(token ? { token } : {}) });
    const code = async (res: Response) => [res.status, ((await res.json()) as { error: { code: string } }).error.code];

    expect(await code(await post({ scope: 'device', deviceId: a.deviceId }, readonlyToken))).toEqual([403, 'INV_ERR_API_FORBIDDEN']);
    expect(await code(await post({ scope: 'everyone' }))).toEqual([400, 'INV_ERR_API_BAD_QUERY']);
    expect(await code(await post({ scope: 'session', deviceId: a.deviceId }))).toEqual([400, 'INV_ERR_API_BAD_QUERY']);
    expect(await code(await post({ scope: 'device', deviceId: a.deviceId, extra: 1 }))).toEqual([400, 'INV_ERR_API_BAD_QUERY']);
    expect(await code(await post({ scope: 'device', deviceId: 'dev-nobody' }))).toEqual([404, 'INV_ERR_API_NOT_FOUND']);
    expect(await code(await post({ scope: 'user', user: 'nobody' }))).toEqual([404, 'INV_ERR_API_NOT_FOUND']);
    expect(await c.store.undeliveredCommands(a.deviceId)).toEqual([]);
  });
});
