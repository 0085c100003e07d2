import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { buildCollector } from '../../collector/collector';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import type { CollectorStore, LeaseVerdict } from '../../collector/store/store';
import { proofFor } from '../../node-common/device-proof';
import { preset } from '../../shared/policy/presets';
import type { CollectorToAgent } from '../../shared/protocol';
import { eventually, startCli, tempDir } from '../support/cli';
import { freePort, silentLogger } from '../support/harness';
import { describePostgres, freshSchema } from '../support/postgres';
import { TEST_SECRET_KEY } from '../support/secret-key';

/**
 * "Users must not log on to more than two school devices with the same user
 * credentials" (Basildon 3.7), under the worst case: 1,000 users each signing
 * in on three devices at the same moment. Every repetition must grant exactly
 * two of each user's three claims, and leave exactly two live leases per user.
 *
 * Per store, one repetition goes the whole way: 3,000 devices authenticated
 * over real WebSocket connections on loopback (to one collector on SQLite; to
 * two collector processes sharing PostgreSQL, each user's devices split
 * between them), every claim sent before any verdict is read. The other
 * repetitions call the store directly, with all 3,000 claims in flight at once
 * (Promise.all): the full protocol path takes seconds per repetition, the
 * store is where the decision is made. On PostgreSQL they go through two
 * store instances with pools of their own, as two collector processes would.
 * Odd repetitions hand the claims over in 30 slices across event-loop turns,
 * so the stores' group commits form many small batches that interleave.
 *
 * Needs the built CLI (`npm run build`) for the two collector processes.
 */

const USERS = 1000;
const DEVICES_PER_USER = 3;
const LIMIT = 2; // basildon-primary: loginLimit.default.maxDevices
const DIRECT_REPETITIONS = 20;
/** Every loop in this file is bounded by this, as well as by its own count. */
const FILE_DEADLINE = Date.now() + 120_000;

interface Claim {
  user: string;
  deviceIndex: number;
}

/** Each user's three claims, the name spelt differently on each device, in an order that keeps a user's claims apart. */
function claimsFor(prefix: string): Claim[] {
  const spellings = (name: string) => [name, name.toUpperCase(), name[0]!.toUpperCase() + name.slice(1)];
  const claims: Claim[] = [];
  for (let d = 0; d < DEVICES_PER_USER; d++) {
    for (let u = 0; u < USERS; u++) claims.push({ user: spellings(`${prefix}-pupil-${u}`)[d]!, deviceIndex: u * DEVICES_PER_USER + d });
  }
  return claims;
}

/** The outcome, as `userKey → granted count`; every user must be at exactly LIMIT. */
function usersNotAtLimit(claims: readonly Claim[], granted: readonly boolean[]): Array<[string, number]> {
  const perUser = new Map<string, number>();
  claims.forEach((c, i) => perUser.set(c.user.toLowerCase(), (perUser.get(c.user.toLowerCase()) ?? 0) + (granted[i] ? 1 : 0)));
  expect(perUser.size).toBe(USERS);
  return [...perUser].filter(([, n]) => n !== LIMIT);
}

/** What the store holds afterwards: users of this repetition whose live leases are not on exactly LIMIT devices. */
async function leasesNotAtLimit(store: CollectorStore, prefix: string, now: string): Promise<Array<[string, number]>> {
  const devices = new Map<string, Set<string>>();
  for (const l of await store.liveLeases({ now })) {
    const key = l.user.toLowerCase();
    if (!key.startsWith(`${prefix}-`)) continue;
    if (!devices.has(key)) devices.set(key, new Set());
    devices.get(key)!.add(l.deviceId);
  }
  expect(devices.size).toBe(USERS);
  return [...devices].map(([user, set]) => [user, set.size] as [string, number]).filter(([, n]) => n !== LIMIT);
}

const deviceId = (i: number) => `dev-race-${i}`;
const secretOf = (i: number) => createHash('sha256').update(`race-device-${i}`).digest();

async function enrollDevices(store: CollectorStore): Promise<void> {
  const now = new Date().toISOString();
  for (let i = 0; i < USERS * DEVICES_PER_USER; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, USERS * DEVICES_PER_USER - i) }, (_, j) =>
        store.enrollDevice({
          id: deviceId(i + j),
          installationId: `inst-race-${i + j}`,
          secret: secretOf(i + j),
          hostname: `ROOM-${i + j}`,
          platform: 'linux',
          agentVersion: 'race',
          tokenId: 'tok-race',
          now,
          approval: 'approved',
          enrolledFrom: null,
        }),
      ),
    );
  }
}

/** The direct repetitions: every claim handed to the stores before any is decided. */
async function directRepetition(stores: readonly CollectorStore[], rep: number): Promise<{ granted: boolean[]; prefix: string; now: string }> {
  const prefix = `r${rep}`;
  const now = new Date(Date.parse('2026-11-23T09:00:00Z') + rep * 3_600_000).toISOString();
  await stores[0]!.dropExpiredLeases(now);
  const claims = claimsFor(prefix);
  const claimOne = (c: Claim, i: number): Promise<LeaseVerdict> =>
    stores[(c.deviceIndex + Math.floor(i / 7)) % stores.length]!.claimLease({
      deviceId: deviceId(c.deviceIndex),
      hostname: `ROOM-${c.deviceIndex}`,
      user: c.user,
      sessionId: `s-${rep}`,
      role: 'pupil',
      now,
      leaseSeconds: 300,
      limit: LIMIT,
    });
  let pending: Array<Promise<LeaseVerdict>>;
  if (rep % 2 === 0) {
    pending = claims.map(claimOne);
  } else {
    pending = [];
    const slice = Math.ceil(claims.length / 30);
    for (let start = 0; start < claims.length; start += slice) {
      pending.push(...claims.slice(start, start + slice).map((c, j) => claimOne(c, start + j)));
      await new Promise((r) => setImmediate(r));
    }
  }
  const verdicts = await Promise.all(pending);
  expect(
    usersNotAtLimit(
      claims,
      verdicts.map((v) => v.granted),
    ),
  ).toEqual([]);
  return { granted: verdicts.map((v) => v.granted), prefix, now };
}

/** A device on a real connection: authenticated, then its claim's verdict. */
function connectDevice(url: string, index: number): Promise<{ ws: WebSocket; verdict: Promise<Extract<CollectorToAgent, { type: 'login.verdict' }>> }> {
  return new Promise((resolve, reject) => {
    const id = deviceId(index);
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`${id}: not welcomed within 20 s`));
    }, 20_000);
    ws.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.on('open', () =>
      ws.send(
        JSON.stringify({
          v: 1,
          type: 'hello',
          agentVersion: 'race',
          hostname: `ROOM-${index}`,
          platform: 'linux',
          policyId: 'basildon-primary',
          policyRevision: 1,
          auth: { kind: 'device', deviceId: id },
        }),
      ),
    );
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as CollectorToAgent;
      if (m.type === 'challenge') {
        ws.send(JSON.stringify({ v: 1, type: 'auth.proof', deviceId: id, nonce: m.nonce, proof: proofFor(secretOf(index), m.nonce, id) }));
      } else if (m.type === 'welcome') {
        clearTimeout(timer);
        ws.removeAllListeners('message');
        const verdict = new Promise<Extract<CollectorToAgent, { type: 'login.verdict' }>>((resolveVerdict, rejectVerdict) => {
          ws.on('message', (d) => {
            const v = JSON.parse(String(d)) as CollectorToAgent;
            if (v.type === 'login.verdict') resolveVerdict(v);
            else if (v.type === 'error') rejectVerdict(new Error(`${id}: ${v.error.code} ${v.error.message}`));
          });
        });
        verdict.catch(() => undefined);
        resolve({ ws, verdict });
      } else if (m.type === 'busy' || m.type === 'error') {
        clearTimeout(timer);
        ws.terminate();
        reject(new Error(`${id}: ${JSON.stringify(m)}`));
      }
    });
  });
}

/** The full path: 3,000 connections (device i to urls[i's device number modulo urls]); all claims sent, then all verdicts awaited. */
async function socketRepetition(urls: readonly string[], prefix: string): Promise<void> {
  const claims = claimsFor(prefix);
  const connections: Array<Awaited<ReturnType<typeof connectDevice>>> = [];
  try {
    // In waves, below the collector's limit of 500 handshakes at once.
    for (let i = 0; i < USERS * DEVICES_PER_USER && Date.now() < FILE_DEADLINE; i += 250) {
      const wave = Array.from({ length: Math.min(250, USERS * DEVICES_PER_USER - i) }, (_, j) => i + j);
      connections.push(...(await Promise.all(wave.map((index) => connectDevice(urls[(index % DEVICES_PER_USER) % urls.length]!, index)))));
    }
    expect(connections).toHaveLength(USERS * DEVICES_PER_USER);

    claims.forEach((c, i) =>
      connections[c.deviceIndex]!.ws.send(
        JSON.stringify({ v: 1, type: 'login.claim', claimId: `k-${i}`, user: { name: c.user }, sessionId: 's-1', role: 'pupil', at: new Date().toISOString() }),
      ),
    );
    const verdicts = await Promise.race([
      Promise.all(claims.map((c) => connections[c.deviceIndex]!.verdict)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('not every verdict arrived within 30 s')), 30_000).unref()),
    ]);

    expect(
      usersNotAtLimit(
        claims,
        verdicts.map((v) => v.granted),
      ),
    ).toEqual([]);
    const refused = verdicts.filter((v) => !v.granted);
    expect(refused.every((v) => v.limit === LIMIT && v.others.length === LIMIT && v.others.every((o) => o.ref !== undefined))).toBe(true);
  } finally {
    for (const c of connections) c.ws.terminate();
  }
}

describe('at most two devices per login, 1,000 users on three devices each at once: one collector on SQLite', () => {
  const dir = tempDir('login-race-sqlite');
  const store = new SqliteStore(join(dir, 'collector.db'), { secretKey: TEST_SECRET_KEY });

  beforeAll(async () => {
    await store.migrate();
    await enrollDevices(store);
  }, 60_000);
  afterAll(async () => store.close());

  it('through real WebSocket connections: exactly two of each user’s three claims are granted', async () => {
    const collector = buildCollector({ store, logger: silentLogger(), policy: preset('basildon-primary')!, version: 'test' });
    const { port } = await collector.listen(0, '127.0.0.1');
    try {
      await socketRepetition([`ws://127.0.0.1:${port}/agent`], 'ws');
      expect(await leasesNotAtLimit(store, 'ws', new Date().toISOString())).toEqual([]);
    } finally {
      await collector.close();
    }
  }, 60_000);

  it(`straight to the store, all 3,000 claims in flight at once, ${DIRECT_REPETITIONS} times: exactly two each time`, async () => {
    let ran = 0;
    for (let rep = 0; rep < DIRECT_REPETITIONS && Date.now() < FILE_DEADLINE; rep++, ran++) {
      const { prefix, now } = await directRepetition([store], rep);
      expect(await leasesNotAtLimit(store, prefix, now)).toEqual([]);
    }
    expect(ran).toBe(DIRECT_REPETITIONS);
  }, 60_000);
});

describePostgres('at most two devices per login, 1,000 users on three devices each at once: two collector processes on one PostgreSQL', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let stores: PostgresStore[];
  let keyFile: string;

  beforeAll(async () => {
    schema = await freshSchema();
    stores = [new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY }), new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY })];
    keyFile = join(tempDir('race-key'), 'device-secret-key');
    writeFileSync(keyFile, `${TEST_SECRET_KEY.toString('base64url')}\n`, { mode: 0o600 });
    await Promise.all(stores.map((s) => s.migrate()));
    await enrollDevices(stores[0]!);
  }, 60_000);
  afterAll(async () => {
    for (const s of stores) await s.close();
    await schema.drop();
  });

  it('through real WebSocket connections to two collector processes: exactly two of each user’s three claims are granted', async () => {
    const processes = await Promise.all(
      ['a', 'b'].map(async (name) => {
        const port = await freePort();
        // 3,000 devices all on 127.0.0.1, 250 at once: a school behind one NAT address, which lifts the per-address cap.
        const run = startCli([
          'collector',
          '--db',
          schema.url,
          '--port',
          String(port),
          '--data-dir',
          tempDir(`race-${name}`),
          '--log-level',
          'error',
          '--handshakes-per-address',
          '0',
          // The devices were enrolled by the stores above, under their key: the processes must share it.
          '--secret-key-file',
          keyFile,
        ]);
        await eventually(() => (/listening on/.test(run.output()) ? true : undefined), 400);
        return { run, url: `ws://127.0.0.1:${port}/agent` };
      }),
    );
    try {
      // Device 0 of each user goes to process a, device 1 to b, device 2 to a: every user's claims meet in both processes.
      await socketRepetition(
        processes.map((p) => p.url),
        'ws',
      );
      expect(await leasesNotAtLimit(stores[0]!, 'ws', new Date().toISOString())).toEqual([]);
    } finally {
      for (const p of processes) p.run.child.kill('SIGTERM');
      await Promise.all(processes.map((p) => p.run.exited));
    }
  }, 90_000);

  it(`straight to two stores, all 3,000 claims in flight at once, ${DIRECT_REPETITIONS} times: exactly two each time`, async () => {
    let ran = 0;
    for (let rep = 0; rep < DIRECT_REPETITIONS && Date.now() < FILE_DEADLINE; rep++, ran++) {
      const { prefix, now } = await directRepetition(stores, rep);
      expect(await leasesNotAtLimit(stores[1]!, prefix, now)).toEqual([]);
    }
    expect(ran).toBe(DIRECT_REPETITIONS);
  }, 90_000);
});
