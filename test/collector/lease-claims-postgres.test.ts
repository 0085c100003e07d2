import { Client, Pool } from 'pg';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { StatementChain } from '../../collector/store/postgres/statement-chain';
import { sqlIntArray, sqlText, sqlTextArray, textArray } from '../../collector/store/postgres/text-array';
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

  it('writes every text, however hostile, into a chained statement as the same text', async () => {
    // Dollar quotes, the tag itself and a tag split across the end are what could close the constant early.
    const hostile = ["o'brien", "'; DROP TABLE leases; --", '$inv$', 'x$inv', '$inv0$', '$$', 'back\\slash', '"quoted"', '{a,b}', 'NULL', '', 'é漢😀'];
    for (const h of hostile) {
      const { rows } = await client.query<{ t: string }>(`SELECT ${sqlText(h)} AS t`);
      expect(rows[0]!.t).toBe(h);
    }
    const { rows } = await client.query<{ a: Array<string | null>; n: Array<number | null> }>(
      `SELECT ${sqlTextArray([...hostile, null])} AS a, ${sqlIntArray([0, -7, null, 2_147_483_647])} AS n`,
    );
    expect(rows[0]!.a).toEqual([...hostile, null]);
    expect(rows[0]!.n).toEqual([0, -7, null, 2_147_483_647]);
  });

  it('refuses, before anything is sent, a NUL in text and anything but an integer', () => {
    expect(() => sqlText('ab\0cd')).toThrow(RangeError);
    expect(() => sqlTextArray(['fine', 'a\0'])).toThrow(RangeError);
    for (const bad of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) expect(() => sqlIntArray([bad])).toThrow(RangeError);
  });

  it('sends the statements waiting in a chain in order with the next query, in one round trip, and stops at the first that fails', async () => {
    const pooled = new Pool({ connectionString: POSTGRES_URL, max: 1 });
    const c = await pooled.connect();
    let sent = 0;
    const query = c.query.bind(c);
    c.query = ((...args: unknown[]) => {
      sent++;
      return (query as (...a: unknown[]) => unknown)(...args);
    }) as typeof c.query;
    try {
      const chain = new StatementChain(c);
      chain.add('BEGIN');
      chain.add('CREATE TEMP TABLE chained (n int) ON COMMIT DROP');
      chain.add('INSERT INTO chained VALUES (1), (2)');
      const { rows } = await chain.query<{ total: number }>('SELECT sum(n)::int AS total FROM chained');
      expect(rows).toEqual([{ total: 3 }]);
      expect(sent).toBe(1);
      chain.add('INSERT INTO chained VALUES (1 / 0)');
      chain.add('INSERT INTO chained VALUES (40)');
      await expect(chain.query('SELECT 1')).rejects.toMatchObject({ code: '22012' });
      await query('ROLLBACK');
      await chain.send(); // nothing waits: nothing is sent
      expect(sent).toBe(2);
    } finally {
      c.release();
      await pooled.end();
    }
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
