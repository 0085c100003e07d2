import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { POSTGRES_MIGRATIONS, POSTGRES_SECRET_SEALING } from '../../collector/store/postgres/migrations';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { SQLITE_MIGRATIONS, SQLITE_SECRET_SEALING } from '../../collector/store/sqlite/migrations';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import { tempDir } from '../support/cli';
import { describePostgres, freshSchema } from '../support/postgres';
import { TEST_SECRET_KEY } from '../support/secret-key';
import type { EventEnvelope } from '../../shared/protocol';
import { type LegacyDevice, type StoreUnderTest, eventFor, storeContract } from './store-contract';

const LEGACY_T = '2026-01-05T08:00:00.000Z';

function sqliteUnderTest(dir: string): StoreUnderTest & { file: string } {
  const file = join(dir, 'collector.db');
  return {
    file,
    store: new SqliteStore(file, { secretKey: TEST_SECRET_KEY }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    open: (key, options = {}) => new SqliteStore(file, { secretKey: key, ...options }),
    storedSecret: async (deviceId) => {
      const raw = new Database(file, { readonly: true });
      try {
        return (raw.prepare('SELECT secret FROM devices WHERE id = ?').get(deviceId) as { secret: Buffer }).secret;
      } finally {
        raw.close();
      }
    },
  };
}

/** A database as the release before sealing left it: its migrations only, devices in clear, in WAL mode as the store runs it. */
function sqliteLegacy(devices: readonly LegacyDevice[]): StoreUnderTest & { file: string } {
  const dir = tempDir('sqlite-legacy');
  const raw = new Database(join(dir, 'collector.db'));
  raw.pragma('journal_mode = WAL');
  raw.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  SQLITE_MIGRATIONS.slice(0, SQLITE_SECRET_SEALING ?? SQLITE_MIGRATIONS.length).forEach((sql, i) => {
    raw.exec(sql);
    raw.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(i + 1, LEGACY_T);
  });
  for (const d of devices) {
    raw
      .prepare('INSERT INTO devices (id, installation_id, secret, hostname, platform, agent_version, token_id, enrolled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(d.id, `inst-${d.id}`, d.secret, 'OLD-PC', 'linux', '0.1.0', 'tok-1', LEGACY_T);
  }
  // A term of connections: every one rewrites the row, leaving older copies of it (and of its secret) in free space.
  for (let i = 0; i < 12; i++) {
    raw
      .prepare('UPDATE devices SET connected_to = ?, presence_at = ?, hostname = ?')
      .run(`collector-${'x'.repeat(i * 7)}`, LEGACY_T, `OLD-PC-${'y'.repeat(i * 3)}`);
    raw.prepare('UPDATE devices SET connected_to = NULL').run();
  }
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.close();
  return sqliteUnderTest(dir);
}

describe('the SQLite store (a real file)', () => {
  storeContract(
    async () => sqliteUnderTest(tempDir('sqlite')),
    async (devices) => sqliteLegacy(devices),
  );

  it('leaves no byte of a secret it sealed in the database files, free pages and write-ahead log included', async () => {
    const devices = Array.from({ length: 20 }, (_, i) => ({ id: `dev-${i}`, secret: randomBytes(32) }));
    const legacy = sqliteLegacy(devices);
    const copies = (bytes: Buffer, secret: Buffer) => {
      let n = 0;
      for (let at = bytes.indexOf(secret); at >= 0 && n < 100; at = bytes.indexOf(secret, at + 1)) n++;
      return n;
    };
    // The older release's file: each secret in its row, and older copies of rows left in free space.
    const before = readFileSync(legacy.file);
    expect(devices.every((d) => copies(before, d.secret) >= 1)).toBe(true);
    expect(devices.some((d) => copies(before, d.secret) > 1)).toBe(true);
    try {
      await legacy.store.migrate();
      await legacy.store.insertEvents('dev-0', [eventFor('dev-0', 1)], LEGACY_T);
      // What a reader of the data folder could copy while the collector runs.
      const copied = [legacy.file, `${legacy.file}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f));
      expect(copied.length).toBeGreaterThan(0);
      for (const d of devices) for (const bytes of copied) expect(bytes.indexOf(d.secret)).toBe(-1);
    } finally {
      await legacy.store.close();
      await legacy.cleanup();
    }
  });
});

async function postgresUnderTest(url: string, drop: () => Promise<void>): Promise<StoreUnderTest> {
  return {
    store: new PostgresStore(url, { secretKey: TEST_SECRET_KEY }),
    cleanup: drop,
    open: (key, options = {}) => new PostgresStore(url, { secretKey: key, ...options }),
    storedSecret: async (deviceId) => {
      const raw = new Client({ connectionString: url });
      await raw.connect();
      try {
        return (await raw.query<{ secret: Buffer }>('SELECT secret FROM devices WHERE id = $1', [deviceId])).rows[0]!.secret;
      } finally {
        await raw.end();
      }
    },
  };
}

describePostgres('the PostgreSQL store (the server on 127.0.0.1)', () => {
  storeContract(
    async () => {
      const schema = await freshSchema();
      return postgresUnderTest(schema.url, schema.drop);
    },
    async (devices) => {
      const schema = await freshSchema();
      const raw = new Client({ connectionString: schema.url });
      await raw.connect();
      try {
        await raw.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
        const legacy = POSTGRES_MIGRATIONS.slice(0, POSTGRES_SECRET_SEALING ?? POSTGRES_MIGRATIONS.length);
        for (const [i, sql] of legacy.entries()) {
          await raw.query(sql);
          await raw.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [i + 1, LEGACY_T]);
        }
        for (const d of devices) {
          await raw.query(
            'INSERT INTO devices (id, installation_id, secret, hostname, platform, agent_version, token_id, enrolled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
            [d.id, `inst-${d.id}`, d.secret, 'OLD-PC', 'linux', '0.1.0', 'tok-1', LEGACY_T],
          );
        }
      } finally {
        await raw.end();
      }
      return postgresUnderTest(schema.url, schema.drop);
    },
  );

  it('stores resends from two collector processes sharing the database once', async () => {
    const schema = await freshSchema();
    const [a, b] = [new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY }), new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY })];
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

  it('holds the software cap exactly when two processes store one device’s programs at once', async () => {
    const schema = await freshSchema();
    const options = { secretKey: TEST_SECRET_KEY, maxProgramsPerDevice: 60 };
    const [a, b] = [new PostgresStore(schema.url, options), new PostgresStore(schema.url, options)];
    try {
      await Promise.all([a.migrate(), b.migrate()]);
      await a.enrollDevice({
        id: 'dev-a',
        installationId: 'inst-a',
        secret: Buffer.alloc(32),
        hostname: 'h',
        platform: 'linux',
        agentVersion: '1',
        tokenId: 't',
        now: LEGACY_T,
        approval: 'approved',
        enrolledFrom: null,
      });
      const program = (seq: number): EventEnvelope =>
        ({
          ...eventFor('dev-a', seq),
          type: 'software.installed',
          severity: 'info',
          data: { name: `p-${seq}`, version: '1', source: 'dpkg' },
        }) as EventEnvelope;
      // Two connections' batches of new programs, interleaved: 200 programs for 60 places.
      const batches = Array.from({ length: 10 }, (_, i) => Array.from({ length: 20 }, (_, j) => program(i * 20 + j + 1)));
      const results = await Promise.all(batches.map((batch, i) => (i % 2 ? a : b).insertEvents('dev-a', batch, LEGACY_T)));
      expect((await a.listSoftware('dev-a', { limit: 1000 })).software).toHaveLength(60);
      expect(results.reduce((n, r) => n + (r.softwareRefused?.programs ?? 0), 0)).toBe(140);
      expect(results.filter((r) => r.softwareRefused?.newlyFull)).toHaveLength(1);
      expect(await b.countEvents()).toBe(200);
    } finally {
      await a.close();
      await b.close();
      await schema.drop();
    }
  });

  it('ends with the software list the events say, in sequence order, when two processes store overlapping resends at once', async () => {
    const schema = await freshSchema();
    const [a, b] = [new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY }), new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY })];
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
        expect((await a.listSoftware(deviceId, { limit: 1000 })).software.map((p) => p.name).sort()).toEqual([...expected].sort());
        expect(await b.countEvents()).toBe(300 * (round + 1));
      }
    } finally {
      await a.close();
      await b.close();
      await schema.drop();
    }
  });
});
