import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** Set by global-setup.js when PostgreSQL answered. */
export const POSTGRES_URL = process.env.INVIGILATOR_TEST_POSTGRES_URL;
export const POSTGRES_SKIP_REASON = process.env.INVIGILATOR_TEST_POSTGRES_SKIP;

/** `describe` when PostgreSQL is reachable; otherwise skipped, with the reason printed by global setup and in the title. */
export const describePostgres: jest.Describe = (
  POSTGRES_URL ? describe : (name: string, fn: () => void) => describe.skip(`${name} [skipped: ${POSTGRES_SKIP_REASON}]`, fn)
) as jest.Describe;

/** A schema of its own for one test file, so runs never see each other's rows. Returns its connection string. */
export async function freshSchema(): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `inv_t_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const sep = POSTGRES_URL!.includes('?') ? '&' : '?';
  return {
    url: `${POSTGRES_URL}${sep}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    drop: async () => {
      const c = new Client({ connectionString: POSTGRES_URL });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}
