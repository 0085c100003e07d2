'use strict';
/**
 * Probes PostgreSQL once for the whole run. Under CI the PostgreSQL tests must
 * run, so an unreachable server fails the run here; elsewhere they are skipped
 * and the reason is printed.
 */
const { Client } = require('pg');

const POSTGRES = process.env.INVIGILATOR_TEST_POSTGRES || 'postgres://postgres@127.0.0.1:5432/test';

module.exports = async function globalSetup() {
  const client = new Client({ connectionString: POSTGRES, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    process.env.INVIGILATOR_TEST_POSTGRES_URL = POSTGRES;
    delete process.env.INVIGILATOR_TEST_POSTGRES_SKIP;
  } catch (e) {
    const reason = `PostgreSQL at ${POSTGRES} is unreachable (${e.message})`;
    if (process.env.CI === 'true') throw new Error(`${reason}; under CI the PostgreSQL tests must run`);
    process.env.INVIGILATOR_TEST_POSTGRES_SKIP = reason;
    process.stdout.write(
      `\nSkipping the PostgreSQL tests: ${reason}. Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
};
