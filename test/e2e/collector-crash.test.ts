import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import type { CollectorStore } from '../../collector/store/store';
import type { EventDraft } from '../../agent/core/events';
import { eventually, startCli, tempDir } from '../support/cli';
import { allEvents, checkExactlyOnce } from '../support/delivery-checks';
import { buildCollector } from '../../collector/collector';
import { preset } from '../../shared/policy/presets';
import { freePort, silentLogger, startTestAgent, startTestCollector } from '../support/harness';
import { POSTGRES_URL, freshSchema } from '../support/postgres';
import { SECRET_KEY_FILE, loadSecretKey } from '../../collector/secret-key-file';

const KILLS = 20;
const PER_ROUND = 500;
const fast = { backoffBaseMs: 50, backoffCapMs: 400 };
const label = (k: number): EventDraft => ({
  type: 'command.completed',
  severity: 'info',
  time: new Date().toISOString(),
  data: { commandId: `k-${k}`, ok: true },
});

async function startCollectorProcess(db: string, port: number, dataDir: string) {
  // The token the collector keeps in its data dir approves at once: these tests are about delivery, not approval.
  const run = startCli(['collector', '--db', db, '--port', String(port), '--data-dir', dataDir, '--log-level', 'error'], {
    INVIGILATOR_ENROLLMENT_APPROVAL: 'automatic',
  });
  await eventually(() => (/listening on/.test(run.output()) ? true : undefined), 400);
  return run;
}

const stores: Array<[string, () => Promise<{ db: string; open: (secretKey: Buffer) => CollectorStore; drop: () => Promise<void> }>]> = [
  [
    'SQLite',
    async () => {
      const file = join(tempDir('collector-db'), 'collector.db');
      return { db: `sqlite:${file}`, open: (secretKey) => new SqliteStore(file, { secretKey }), drop: async () => undefined };
    },
  ],
];
if (POSTGRES_URL) {
  stores.push([
    'PostgreSQL',
    async () => {
      const schema = await freshSchema();
      return { db: schema.url, open: (secretKey) => new PostgresStore(schema.url, { secretKey }), drop: schema.drop };
    },
  ]);
} else {
  process.stdout.write(`collector-crash: the PostgreSQL variant is skipped: ${process.env.INVIGILATOR_TEST_POSTGRES_SKIP}\n`);
}

describe.each(stores)('the collector killed with SIGKILL during a burst (%s)', (_name, makeDb) => {
  it(`delivers every event exactly once across ${KILLS} kills and restarts`, async () => {
    const db = await makeDb();
    const port = await freePort();
    const dataDir = tempDir('collector-data');
    let collector = await startCollectorProcess(db.db, port, dataDir);
    const token = readFileSync(join(dataDir, 'enrollment-token'), 'utf8').trim();
    const agent = await startTestAgent(`ws://127.0.0.1:${port}/agent`, token, undefined, fast);
    const confirmed: number[] = [];
    try {
      for (let round = 0; round < KILLS; round++) {
        const chunk = Array.from({ length: PER_ROUND }, (_, i) => round * PER_ROUND + i + 1);
        const recording = Promise.all(chunk.map((k) => agent.record(label(k)).then(() => confirmed.push(k))));
        // Kill at a random moment while this round's events are being recorded and sent.
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 40)));
        collector.child.kill('SIGKILL');
        await collector.exited;
        await recording;
        collector = await startCollectorProcess(db.db, port, dataDir);
      }
      await eventually(() => (agent.outbox.pendingCount === 0 ? true : undefined), 1200);
    } finally {
      await agent.stop('test over');
      collector.child.kill('SIGTERM');
      await collector.exited;
    }

    // The collector processes made the key in their data folder at first start.
    const store = db.open(loadSecretKey(join(dataDir, SECRET_KEY_FILE)).key);
    try {
      const [device] = await store.listDevices();
      const result = checkExactlyOnce(await allEvents(store, device!.id), confirmed);
      expect(confirmed).toHaveLength(KILLS * PER_ROUND);
      expect(result.labels).toBe(KILLS * PER_ROUND);
    } finally {
      await store.close();
      await db.drop();
    }
    // Twenty collector starts, each a process booting Node and migrating the store: about 40 s alone, more on a loaded CI machine.
  }, 180_000);
});

describe('the collector down while the agent records 100,000 events', () => {
  it('delivers all of them, none twice, once the collector is back', async () => {
    const port = await freePort();
    // An enrollment token made by a collector that then goes away; the agent enrolls when it is back.
    const first = await startTestCollector({ port });
    const token = await first.enrollmentToken();
    const agent = await startTestAgent(first.agentUrl, token, undefined, fast);
    await eventually(() => (agent.link.currentState === 'ready' ? true : undefined));
    const store = first.store;
    await first.collector.close();

    const total = 100_000;
    const confirmed: number[] = [];
    for (let start = 1; start <= total; start += 2000) {
      await Promise.all(Array.from({ length: 2000 }, (_, i) => agent.record(label(start + i)).then(() => confirmed.push(start + i))));
    }
    expect(agent.outbox.pendingCount).toBeGreaterThanOrEqual(total);

    const back = buildCollector({ store, logger: silentLogger(), policy: preset('basildon-primary')!, version: 'test' });
    await back.listen(port, '127.0.0.1');
    try {
      await eventually(() => (agent.outbox.pendingCount === 0 ? true : undefined), 1200);
      const [device] = await store.listDevices();
      const result = checkExactlyOnce(await allEvents(store, device!.id), confirmed);
      expect(result.labels).toBe(total);
    } finally {
      await agent.stop('test over');
      await back.close();
      await store.close();
    }
  });
});
