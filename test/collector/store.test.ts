import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import { tempDir } from '../support/cli';
import { describePostgres, freshSchema } from '../support/postgres';
import { eventFor, storeContract } from './store-contract';

describe('the SQLite store (a real file)', () => {
  storeContract(async () => {
    const dir = tempDir('sqlite');
    return { store: new SqliteStore(join(dir, 'collector.db')), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
  });
});

describePostgres('the PostgreSQL store (the server on 127.0.0.1)', () => {
  storeContract(async () => {
    const schema = await freshSchema();
    return { store: new PostgresStore(schema.url), cleanup: schema.drop };
  });

  it('stores resends from two collector processes sharing the database once', async () => {
    const schema = await freshSchema();
    const [a, b] = [new PostgresStore(schema.url), new PostgresStore(schema.url)];
    try {
      await Promise.all([a.migrate(), b.migrate()]);
      await a.enrollDevice({
        id: 'dev-a',
        installationId: 'inst-a',
        secret: Buffer.alloc(32),
        hostname: 'h',
        platform: 'win32',
        agentVersion: '1',
        tokenId: 't',
        now: '2026-11-23T09:00:00.000Z',
      });
      const batch = Array.from({ length: 200 }, (_, i) => eventFor('dev-a', i + 1));
      const results = await Promise.all([a, b, a, b].map((s) => s.insertEvents('dev-a', batch, '2026-11-23T09:00:00.000Z')));
      expect(results.reduce((n, r) => n + r.inserted, 0)).toBe(200);
      expect(await b.countEvents()).toBe(200);
    } finally {
      await a.close();
      await b.close();
      await schema.drop();
    }
  });
});
