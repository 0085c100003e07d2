import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildCollector } from '../../collector/collector';
import { createEnrollmentToken } from '../../collector/http-api';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import type { CollectorStore } from '../../collector/store/store';
import { preset } from '../../shared/policy/presets';
import type { CollectorToAgent } from '../../shared/protocol';
import { tempDir } from '../support/cli';
import { RawClient, silentLogger } from '../support/harness';
import { POSTGRES_SKIP_REASON, POSTGRES_URL, freshSchema } from '../support/postgres';
import { TEST_SECRET_KEY } from '../support/secret-key';

/**
 * Who may speak for a user in the login limit (docs/architecture.md, "Login
 * limit: who may speak for a user"). Every test runs on both stores, through
 * real connections on loopback, with a clock the test moves by hand.
 */

const T0 = Date.parse('2026-11-23T09:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
/** Basildon: two devices per login, leases of 300 s, 120 s to choose. */
const GRACE_MS = 120_000;

type Verdict = Extract<CollectorToAgent, { type: 'login.verdict' }>;

const stores: Array<[string, () => Promise<{ store: CollectorStore; drop: () => Promise<void> }>]> = [
  [
    'SQLite',
    async () => {
      const dir = tempDir('trust-sqlite');
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
  process.stdout.write(`login-limit-trust: the PostgreSQL variant is skipped: ${POSTGRES_SKIP_REASON}\n`);
}

async function startCollector(makeStore: (typeof stores)[number][1], loginLeases: Record<string, number> = {}) {
  const { store, drop } = await makeStore();
  await store.migrate();
  const clock = { now: T0 };
  const collector = buildCollector({
    store,
    logger: silentLogger(),
    policy: preset('basildon-primary')!,
    version: 'test',
    now: () => clock.now,
    silenceCheckEveryMs: 3_600_000,
    leaseSweepEveryMs: 3_600_000,
    loginLeases,
  });
  const { port } = await collector.listen(0, '127.0.0.1');
  const clients: RawClient[] = [];

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
      platform: 'linux',
      auth: { kind: 'enroll', token, installationId: `inst-${randomUUID()}` },
    });
    const { deviceId } = await client.next('enrolled');
    await client.next('welcome');
    let claims = 0;
    const message = (type: string, user: string, sessionId: string, extra: Record<string, unknown> = {}) => {
      const claimId = `k-${++claims}`;
      client.send({ v: 1, type, claimId, user: { name: user }, sessionId, role: 'pupil', at: iso(clock.now), ...extra });
      return claimId;
    };
    return {
      client,
      deviceId,
      claim: async (user: string, sessionId: string): Promise<Verdict> => {
        const claimId = message('login.claim', user, sessionId);
        const verdict = await client.next('login.verdict');
        expect(verdict.claimId).toBe(claimId);
        return verdict;
      },
      evict: async (user: string, sessionId: string, ref: string): Promise<Verdict> => {
        const claimId = message('login.evict', user, sessionId, { ref });
        const verdict = await client.next('login.verdict');
        expect(verdict.claimId).toBe(claimId);
        return verdict;
      },
      /** A claim that is answered with a coded error and no verdict. */
      claimRefusedWith: async (user: string, sessionId: string): Promise<string> => {
        message('login.claim', user, sessionId);
        return (await client.next('error')).error.code;
      },
      release: (sessionId: string) => client.send({ v: 1, type: 'login.release', sessionId }),
    };
  };

  return {
    clock,
    store,
    device,
    close: async () => {
      for (const c of clients) c.ws.close();
      await collector.close();
      await store.close();
      await drop();
    },
  };
}

type Running = Awaited<ReturnType<typeof startCollector>>;
type Device = Awaited<ReturnType<Running['device']>>;

/** Amy signed in on the library and art-room computers: both her places taken. */
async function amyOnTwoComputers(c: Running): Promise<{ library: Device; art: Device }> {
  const library = await c.device('LIBRARY-07');
  const art = await c.device('ART-02');
  expect((await library.claim('amy.p', 's-9')).granted).toBe(true);
  c.clock.now += 1000;
  expect((await art.claim('amy.p', 's-4')).granted).toBe(true);
  return { library, art };
}

const refOf = (verdict: Verdict, hostname: string): string => {
  const other = verdict.others.find((o) => o.hostname === hostname);
  expect(other?.ref).toEqual(expect.any(String));
  return other!.ref!;
};

describe.each(stores)('who may speak for a user in the login limit (%s)', (_name, makeStore) => {
  let c: Running;
  afterEach(async () => c?.close());

  it('shows a refused claim only the other computers’ names and times, each with an opaque reference, never their ids', async () => {
    c = await startCollector(makeStore);
    const { library, art } = await amyOnTwoComputers(c);
    const third = await c.device('CLASS3-01');

    const refused = await third.claim('amy.p', 's-3');

    expect(refused).toEqual({
      v: 1,
      type: 'login.verdict',
      claimId: 'k-1',
      granted: false,
      limit: 2,
      others: [
        { hostname: 'LIBRARY-07', since: iso(T0), ref: expect.any(String) },
        { hostname: 'ART-02', since: iso(T0 + 1000), ref: expect.any(String) },
      ],
      leaseSeconds: 300,
    });
    const text = JSON.stringify(refused);
    for (const secret of [library.deviceId, art.deviceId, 's-9', 's-4']) expect(text).not.toContain(secret);
    expect(new Set(refused.others.map((o) => o.ref)).size).toBe(2);
  });

  it('tells a granted claim nothing about the user’s other sessions', async () => {
    c = await startCollector(makeStore);
    const library = await c.device('LIBRARY-07');
    await library.claim('amy.p', 's-9');
    const rogue = await c.device('ROGUE');

    const granted = await rogue.claim('amy.p', 's-1');

    expect(granted).toMatchObject({ granted: true, others: [] });
    expect(JSON.stringify(granted)).not.toContain('LIBRARY-07');
  });

  it('ends another session only with a reference from this device’s own refusal of this session and user, once, within the grace period', async () => {
    c = await startCollector(makeStore);
    const { library, art } = await amyOnTwoComputers(c);
    const third = await c.device('CLASS3-01');
    const rogue = await c.device('ROGUE');
    const refusedHere = await third.claim('amy.p', 's-3');
    await rogue.claim('amy.p', 's-66');

    // Another device's reference, another session's, another user's: each is the claim alone, and no sign-out.
    const rogueRefused = await rogue.evict('amy.p', 's-66', refOf(refusedHere, 'LIBRARY-07'));
    expect(rogueRefused.granted).toBe(false);
    expect((await third.evict('amy.p', 's-33', refOf(refusedHere, 'LIBRARY-07'))).granted).toBe(false);
    expect((await third.evict('bob', 's-3', refOf(refusedHere, 'LIBRARY-07'))).granted).toBe(true); // Bob's own first claim
    // A made-up reference: refused again, with new references that replace the old.
    const refusedAgain = await third.evict('amy.p', 's-3', 'ev-made-up-reference');
    expect(refusedAgain.granted).toBe(false);
    expect((await third.evict('amy.p', 's-3', refOf(refusedHere, 'LIBRARY-07'))).granted).toBe(false);
    expect(await c.store.undeliveredCommands(library.deviceId)).toEqual([]);
    expect((await c.store.liveLeases({ user: 'amy.p', now: iso(c.clock.now) })).map((l) => l.deviceId).sort()).toEqual([library.deviceId, art.deviceId].sort());
    const latest = await third.claim('amy.p', 's-3');

    // Then the refused pupil at the third computer chooses the library: she is let in, and the library is signed out.
    const chosen = await third.evict('amy.p', 's-3', refOf(latest, 'LIBRARY-07'));
    expect(chosen).toMatchObject({ granted: true, others: [] });
    expect((await library.client.next('command')).command).toEqual({
      kind: 'logoff',
      target: { scope: 'session', sessionId: 's-9' },
      reason: 'amy.p chose to sign in on CLASS3-01 instead',
    });

    // The refusal's other reference went with the one used.
    expect((await third.evict('amy.p', 's-3', refOf(latest, 'ART-02'))).granted).toBe(true);
    // The rogue's references run out with the grace period.
    c.clock.now += GRACE_MS + 1;
    expect((await rogue.evict('amy.p', 's-66', refOf(rogueRefused, 'ART-02'))).granted).toBe(false);
    expect(await c.store.undeliveredCommands(art.deviceId)).toEqual([]);
    expect((await c.store.liveLeases({ user: 'amy.p', now: iso(c.clock.now) })).map((l) => l.deviceId).sort()).toEqual([art.deviceId, third.deviceId].sort());
  });

  it('holds places for at most maxUsersPerDevice users on one computer at once', async () => {
    c = await startCollector(makeStore, { maxUsersPerDevice: 2 });
    const amysLaptop = await c.device('LAPTOP-AMY');
    const rogue = await c.device('ROGUE');
    expect((await rogue.claim('bob', 's-1')).granted).toBe(true);
    expect((await rogue.claim('cat', 's-2')).granted).toBe(true);
    // Another session of a user already here is not another user.
    expect((await rogue.claim('bob', 's-3')).granted).toBe(true);

    expect(await rogue.claimRefusedWith('amy.p', 's-4')).toBe('INV_ERR_LOGIN_DEVICE_FULL');

    expect((await amysLaptop.claim('amy.p', 's-1')).granted).toBe(true);
    expect(await c.store.liveLeases({ user: 'amy.p', now: iso(c.clock.now) })).toHaveLength(1);
    rogue.release('s-2');
    expect((await rogue.claim('dan', 's-5')).granted).toBe(true);
    expect(rogue.client.ws.readyState).toBe(rogue.client.ws.OPEN);
  });

  it('lets one computer claim for at most newUsersPerDevicePerHour new users an hour', async () => {
    c = await startCollector(makeStore, { newUsersPerDevicePerHour: 3 });
    const rogue = await c.device('ROGUE');
    for (const [i, user] of ['u1', 'u2', 'u3'].entries()) {
      expect((await rogue.claim(user, `s-${i}`)).granted).toBe(true);
      rogue.release(`s-${i}`);
    }

    expect(await rogue.claimRefusedWith('u4', 's-9')).toBe('INV_ERR_LOGIN_CLAIMS_THROTTLED');

    // A user this computer already claimed for within the hour is not new.
    expect((await rogue.claim('U1', 's-10')).granted).toBe(true);
    c.clock.now += 3_600_000;
    expect((await rogue.claim('u4', 's-9')).granted).toBe(true);
  });

  it('lets one computer end at most evictionsPerDevicePerHour other sessions an hour', async () => {
    c = await startCollector(makeStore, { evictionsPerDevicePerHour: 1 });
    const { library, art } = await amyOnTwoComputers(c);
    const third = await c.device('CLASS3-01');
    const first = await third.claim('amy.p', 's-3');
    expect((await third.evict('amy.p', 's-3', refOf(first, 'LIBRARY-07'))).granted).toBe(true);
    third.release('s-3');
    await third.claim('zed', 's-7'); // answered after the release was handled
    expect((await library.claim('amy.p', 's-9')).granted).toBe(true);
    const again = await third.claim('amy.p', 's-3');
    expect(again.granted).toBe(false);

    third.client.send({
      v: 1,
      type: 'login.evict',
      claimId: 'k-x',
      user: { name: 'amy.p' },
      sessionId: 's-3',
      role: 'pupil',
      at: iso(c.clock.now),
      ref: refOf(again, 'ART-02'),
    });

    expect((await third.client.next('error')).error.code).toBe('INV_ERR_LOGIN_CLAIMS_THROTTLED');
    expect(await c.store.undeliveredCommands(art.deviceId)).toEqual([]);
  });
});
