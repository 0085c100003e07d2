import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { LEASE_LOCK_BUCKETS, hashText, leaseLockBucket } from '../../collector/store/postgres/lease-lock-buckets';
import { describePostgres, POSTGRES_URL } from '../support/postgres';

/**
 * A burst of login claims is split by the advisory lock each user takes, so the
 * port of the server's `hashtext` must give the server's answer for every key:
 * every length through several 12-byte blocks and every tail, multi-byte UTF-8,
 * the empty string and random bytes.
 */
describePostgres('lease lock buckets (against PostgreSQL)', () => {
  let client: Client;
  beforeAll(async () => {
    client = new Client({ connectionString: POSTGRES_URL });
    await client.connect();
  });
  afterAll(() => client.end());

  const serverHashes = async (keys: string[]) => {
    const { rows } = await client.query<{ h: number; b: number }>(
      `SELECT hashtext(u) AS h, hashtext(u) & ${LEASE_LOCK_BUCKETS - 1} AS b FROM unnest($1::text[]) WITH ORDINALITY AS t(u, o) ORDER BY o`,
      [keys],
    );
    return rows;
  };

  it('gives the server hashtext for keys of every length from 0 to 60 bytes and in many scripts', async () => {
    const keys = [''];
    for (let len = 1; len <= 60; len++) keys.push('p'.repeat(len), `${'x'.repeat(len - 1)}é`, `m${len}-pupil-${'漢'.repeat(len % 7)}`, `😀${'a'.repeat(len)}`);
    const server = await serverHashes(keys);
    expect(server).toHaveLength(keys.length);
    expect(keys.map(hashText)).toEqual(server.map((r) => r.h));
    expect(keys.map(leaseLockBucket)).toEqual(server.map((r) => r.b));
  });

  it('gives the server hashtext for 2,000 random keys', async () => {
    const keys = Array.from({ length: 2000 }, (_, i) => randomBytes(1 + (i % 50)).toString('base64'));
    const server = await serverHashes(keys);
    expect(keys.map(hashText)).toEqual(server.map((r) => r.h));
  });
});

describe('lease lock buckets', () => {
  it('spreads users over every bucket and stays in range', () => {
    const buckets = new Set(Array.from({ length: 20_000 }, (_, i) => leaseLockBucket(`pupil-${i}`)));
    expect(buckets.size).toBe(LEASE_LOCK_BUCKETS);
    expect(Math.min(...buckets)).toBe(0);
    expect(Math.max(...buckets)).toBe(LEASE_LOCK_BUCKETS - 1);
  });
});
