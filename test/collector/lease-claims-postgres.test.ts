import { Client } from 'pg';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { textArray } from '../../collector/store/postgres/text-array';
import type { LeaseClaim, LeaseVerdict } from '../../collector/store/store';
import { describePostgres, freshSchema, POSTGRES_URL } from '../support/postgres';
import { TEST_SECRET_KEY } from '../support/secret-key';

const T0 = '2026-11-23T09:00:00.000Z';
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString();

const claimOf = (deviceId: string, sessionId: string, user: string, overrides: Partial<LeaseClaim> = {}): LeaseClaim => ({
  deviceId,
  hostname: `HOST-${deviceId}`,
  user,
  sessionId,
  role: 'pupil',
  now: T0,
  leaseSeconds: 300,
  limit: 2,
  ...overrides,
});

/** A verdict without its eviction references, which are random. */
const plain = (v: LeaseVerdict) => ({ ...v, leases: v.leases.map(({ ref: _ref, ...l }) => l) });

describePostgres('login claims on PostgreSQL', () => {
  let client: Client;
  beforeAll(async () => {
    client = new Client({ connectionString: POSTGRES_URL });
    await client.connect();
  });
  afterAll(() => client.end());

  it('sends every text, however hostile, as the same text', async () => {
    const hostile = ['plain', 'a,b', '{braces}', 'sp ace', '"quoted"', 'back\\slash', '\\"', 'NULL', 'null', '', 'é漢😀', 'tab\there', 'new\nline'];
    const { rows } = await client.query<{ a: Array<string | null> }>('SELECT $1::text[] AS a', [textArray([...hostile, null, undefined])]);
    expect(rows[0]!.a).toEqual([...hostile, null, null]);
  });

  describe('with a store of its own', () => {
    let schema: Awaited<ReturnType<typeof freshSchema>>;
    let store: PostgresStore;
    beforeEach(async () => {
      schema = await freshSchema();
      store = new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY });
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
      await schema.drop();
    });

    it('decides again with upserts when another process gives a session it inserts to another user meanwhile', async () => {
      // Another collector process has, in a transaction not yet committed, given dev-1/s-1 to bob.
      const other = new Client({ connectionString: schema.url });
      await other.connect();
      try {
        await other.query('BEGIN');
        await other.query(
          `INSERT INTO leases (device_id, session_id, user_key, user_name, role, hostname, since, expires_at)
           VALUES ('dev-1', 's-1', 'bob', 'bob', 'pupil', 'HOST-dev-1', $1, $2)`,
          [T0, at(300)],
        );

        // This store's claim for amy on the same session cannot see bob's row, so it inserts, and waits on the key.
        const verdict = store.claimLease(claimOf('dev-1', 's-1', 'amy', { now: at(1) }));
        for (let i = 0; i < 200; i++) {
          const { rows } = await client.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO leases%'`);
          if (rows.length > 0) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        await other.query('COMMIT');

        // The insert failed on the key; decided again, the session is amy's now, as the device said.
        expect(await verdict).toEqual({ granted: true, leases: [], evicted: null, deviceFull: false });
        const live = await store.liveLeases({ now: at(2) });
        expect(live.map((l) => `${l.deviceId}/${l.sessionId}/${l.user}`)).toEqual(['dev-1/s-1/amy']);
      } finally {
        await other.end();
      }
    });

    it('extends a session already held by the same user, keeping when it began', async () => {
      await store.claimLease(claimOf('dev-1', 's-1', 'amy'));
      expect(await store.claimLease(claimOf('dev-1', 's-1', 'Amy', { now: at(100), hostname: 'RENAMED' }))).toEqual({
        granted: true,
        leases: [],
        evicted: null,
        deviceFull: false,
      });
      const [lease] = await store.liveLeases({ now: at(350) });
      expect(lease).toMatchObject({ deviceId: 'dev-1', sessionId: 's-1', hostname: 'RENAMED', since: T0, expiresAt: at(400) });
    });
  });

  it('gives the same verdicts to a burst decided in parts at once as in one transaction', async () => {
    // 300 users on three devices each, a sixth of them on capped shared devices, some sessions signed
    // into by two users in turn, and refusals asking for references: every kind of claim the split must keep together.
    const burst: LeaseClaim[] = [];
    for (let u = 0; u < 300; u++) {
      for (let d = 0; d < 3; d++) {
        const shared = u % 6 === 0;
        const device = shared ? `shared-${u % 12}` : `dev-${u}-${d}`;
        burst.push(
          claimOf(device, shared ? `s-${u}-${d}` : `s-${d}`, `pupil-${u}`, {
            now: at(u % 7),
            refSeconds: 60,
            ...(shared ? { maxUsersPerDevice: 3 } : {}),
          }),
        );
      }
      if (u % 10 === 0) burst.push(claimOf(`dev-${u}-0`, 's-0', `pupil-${u + 1}`, { now: at(8) }));
    }
    const decide = async (claimParts: number) => {
      const schema = await freshSchema();
      const store = new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY, claimParts });
      try {
        await store.migrate();
        const verdicts = await Promise.all(burst.map((c) => store.claimLease(c)));
        const leases = (await store.liveLeases({ now: at(10) })).map((l) => `${l.deviceId}/${l.sessionId}/${l.user}`).sort();
        return { verdicts: verdicts.map(plain), leases };
      } finally {
        await store.close();
        await schema.drop();
      }
    };

    const together = await decide(1);
    const inParts = await decide(4);

    expect(together.verdicts.filter((v) => v.granted).length).toBeGreaterThan(500);
    expect(together.verdicts.filter((v) => !v.granted).length).toBeGreaterThan(50);
    expect(inParts.verdicts).toEqual(together.verdicts);
    expect(inParts.leases).toEqual(together.leases);
  });
});
