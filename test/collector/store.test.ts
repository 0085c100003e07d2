import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import { tempDir } from '../support/cli';
import { describePostgres, freshSchema } from '../support/postgres';
import type { EventEnvelope } from '../../shared/protocol';
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
        approval: 'approved',
        enrolledFrom: null,
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

  it('ends with the software list the events say, in sequence order, when two processes store overlapping resends at once', async () => {
    const schema = await freshSchema();
    const [a, b] = [new PostgresStore(schema.url), new PostgresStore(schema.url)];
    try {
      await Promise.all([a.migrate(), b.migrate()]);
      for (let round = 0; round < 10; round++) {
        const deviceId = `dev-${round}`;
        await a.enrollDevice({
          id: deviceId,
          installationId: `inst-${round}`,
          secret: Buffer.alloc(32),
          hostname: 'h',
          platform: 'linux',
          agentVersion: '1',
          tokenId: 't',
          now: '2026-11-23T09:00:00.000Z',
          approval: 'approved',
          enrolledFrom: null,
        });
        // 300 events about 12 programs, installed and removed at random.
        const events = Array.from({ length: 300 }, (_, i): EventEnvelope => {
          const name = `prog-${Math.floor(Math.random() * 12)}`;
          const type = Math.random() < 0.6 ? 'software.installed' : 'software.removed';
          return { ...eventFor(deviceId, i + 1), type, severity: 'notice', data: { name, version: '1', source: 'dpkg' } } as EventEnvelope;
        });
        const expected = new Set<string>();
        for (const e of events)
          if (e.type === 'software.installed') expected.add(e.data.name);
          else if (e.type === 'software.removed') expected.delete(e.data.name);
        const batch = (from: number, to: number) => events.slice(from, to);
        // One process holds the old connection's batches, the other the reconnected agent's resends; both commit, in either order.
        await Promise.all([
          (async () => {
            for (const [from, to] of [
              [0, 50],
              [50, 100],
              [100, 200],
            ] as const)
              await a.insertEvents(deviceId, batch(from, to), '2026-11-23T09:00:00.000Z');
          })(),
          (async () => {
            for (const [from, to] of [
              [50, 150],
              [150, 300],
              [0, 300],
            ] as const)
              await b.insertEvents(deviceId, batch(from, to), '2026-11-23T09:00:00.000Z');
          })(),
        ]);
        expect((await a.listSoftware(deviceId)).map((p) => p.name).sort()).toEqual([...expected].sort());
        expect(await b.countEvents()).toBe(300 * (round + 1));
      }
    } finally {
      await a.close();
      await b.close();
      await schema.drop();
    }
  });
});
