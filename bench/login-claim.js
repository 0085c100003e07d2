'use strict';
/**
 * Login claim decision latency with 1,000 claims in flight at once, on SQLite
 * and on PostgreSQL. Goal: p99 ≤ 25 ms.
 *
 * Per store, three measures, each over ROUNDS rounds (after WARMUP rounds)
 * of 1,000 claims started together:
 * - `p99Ms` (the goal's measure): the decision, from `claimLease` called to
 *   its verdict, 1,000 users signing in on 1,000 devices (a Monday morning);
 * - `contended`: the same, 334 users on three devices each (two thirds of
 *   them granted, the rest refused);
 * - `endToEnd`: 1,000 simulated agents connected over WebSocket on loopback
 *   to one collector process, each sending `login.claim` at once; from the
 *   frame sent to the `login.verdict` received, both processes sharing this
 *   machine's cores.
 */
const { randomBytes } = require('node:crypto');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { Client } = require('pg');
const { DIST, percentile, writeResult, tempDir } = require('./lib');
const { SimAgent, preEnroll, startCollector, connectAll } = require('./sim-agents');

const CLAIMS = 1000;
const ROUNDS = 20;
const WARMUP = 3;
let nextPort = 19600 + Math.floor(Math.random() * 1000);

const summary = (latencies) => ({
  p50Ms: Number(percentile(latencies, 50).toFixed(1)),
  p99Ms: Number(percentile(latencies, 99).toFixed(1)),
  maxMs: Number(Math.max(...latencies).toFixed(1)),
  samples: latencies.length,
});

const gc = () => global.gc?.();

/** ROUNDS measured rounds of CLAIMS claims started together; `claimFor(round, i)` names each. */
async function decisionLatencies(store, claimFor) {
  const latencies = [];
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    const now = new Date(Date.parse('2026-11-23T09:00:00Z') + round * 3_600_000).toISOString();
    await store.dropExpiredLeases(now);
    gc();
    const started = new Array(CLAIMS);
    const took = new Array(CLAIMS);
    await Promise.all(
      Array.from({ length: CLAIMS }, (_, i) => {
        started[i] = process.hrtime.bigint();
        return store.claimLease({ ...claimFor(round, i), role: 'pupil', now, leaseSeconds: 300, limit: 2 }).then(() => {
          took[i] = Number(process.hrtime.bigint() - started[i]) / 1e6;
        });
      }),
    );
    if (round >= WARMUP) latencies.push(...took);
  }
  return latencies;
}

/** Straight to the store, in this process: the decision itself. */
async function storeLevel(makeStore) {
  const store = await makeStore();
  try {
    const monday = await decisionLatencies(store, (round, i) => ({
      deviceId: `dev-${i}`,
      hostname: `ROOM-${i}`,
      user: `m${round}-pupil-${i}`,
      sessionId: `s-${round}`,
    }));
    const contended = await decisionLatencies(store, (round, i) => ({
      deviceId: `dev-c-${i}`,
      hostname: `ROOM-C-${i}`,
      user: `c${round}-pupil-${Math.floor(i / 3)}`,
      sessionId: `s-${round}`,
    }));
    return { monday, contended };
  } finally {
    await store.close();
  }
}

/** Through a collector process: simulated agents on real connections. */
async function endToEnd(db) {
  await preEnroll(db, CLAIMS);
  const port = nextPort++;
  // Each simulated computer signs in a new pupil every round, 23 within a minute: the per-computer limits
  // (collector/login-leases.ts) rightly refuse that, and this measures the decision, not those limits.
  const dataDir = tempDir('login-claim-data');
  const config = join(dataDir, 'collector.json');
  writeFileSync(config, JSON.stringify({ loginLimit: { maxUsersPerDevice: 10_000, newUsersPerDevicePerHour: 100_000 } }));
  const collector = await startCollector(db, port, dataDir, {}, ['--config', config]);
  const agents = Array.from({ length: CLAIMS }, (_, i) => new SimAgent(`ws://127.0.0.1:${port}/agent`, i));
  try {
    await connectAll(agents, 250);
    const waiting = new Map();
    for (const a of agents) {
      a.ws.on('message', (data) => {
        const m = JSON.parse(String(data));
        if (m.type !== 'login.verdict' && m.type !== 'error') return;
        const done = waiting.get(a.deviceId);
        waiting.delete(a.deviceId);
        done?.(m);
      });
    }
    const latencies = [];
    let errors = 0;
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      gc();
      const took = await Promise.all(
        agents.map(
          (a, i) =>
            new Promise((resolve) => {
              const started = process.hrtime.bigint();
              waiting.set(a.deviceId, (m) => {
                if (m.type === 'error') errors++;
                resolve(Number(process.hrtime.bigint() - started) / 1e6);
              });
              a.ws.send(
                JSON.stringify({
                  v: 1,
                  type: 'login.claim',
                  claimId: `k-${round}-${i}`,
                  user: { name: `e${round}-pupil-${i}` },
                  sessionId: `s-${round}`,
                  role: 'pupil',
                  at: new Date().toISOString(),
                }),
              );
            }),
        ),
      );
      if (round >= WARMUP) latencies.push(...took);
    }
    if (errors > 0) throw new Error(`${errors} claims were answered with an error`);
    return latencies;
  } finally {
    agents.forEach((a) => a.close());
    collector.kill('SIGTERM');
    await new Promise((r) => collector.once('exit', r));
  }
}

async function postgresSchema() {
  const base = process.env.INVIGILATOR_TEST_POSTGRES || 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `inv_bench_login_${Date.now()}`;
  const c = new Client({ connectionString: base });
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  return {
    url: `${base}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    drop: async () => {
      const d = new Client({ connectionString: base });
      await d.connect();
      await d.query(`DROP SCHEMA ${schema} CASCADE`);
      await d.end();
    },
  };
}

async function measure(store, makeStore, db) {
  const { monday, contended } = await storeLevel(makeStore);
  const e2e = await endToEnd(db);
  const entry = { store, ...summary(monday), contended: summary(contended), endToEnd: summary(e2e) };
  process.stdout.write(`${store}: ${JSON.stringify(entry)}\n`);
  return entry;
}

async function main() {
  const { SqliteStore } = require(join(DIST, 'collector/store/sqlite/sqlite-store.js'));
  const { PostgresStore } = require(join(DIST, 'collector/store/postgres/postgres-store.js'));
  const results = [];
  const sqliteDir = tempDir('login-claim');
  results.push(
    await measure(
      'sqlite',
      async () => {
        const s = new SqliteStore(join(sqliteDir, 'decisions.db'), { secretKey: randomBytes(32) });
        await s.migrate();
        return s;
      },
      `sqlite:${join(sqliteDir, 'collector.db')}`,
    ),
  );
  try {
    const decisions = await postgresSchema();
    const collector = await postgresSchema();
    try {
      results.push(
        await measure(
          'postgres',
          async () => {
            const s = new PostgresStore(decisions.url, { secretKey: randomBytes(32) });
            await s.migrate();
            return s;
          },
          collector.url,
        ),
      );
    } finally {
      await decisions.drop();
      await collector.drop();
    }
  } catch (e) {
    results.push({ store: 'postgres', p99Ms: null, error: String(e.message || e) });
  }
  writeResult('login-claim', {
    concurrentClaims: CLAIMS,
    rounds: ROUNDS,
    measures: {
      p99Ms: 'claimLease called → verdict, 1,000 users on 1,000 devices at once, in one process with the store',
      contended: 'the same, 334 users on three devices each at once',
      endToEnd: 'login.claim sent → login.verdict received, 1,000 agents on loopback WebSocket to one collector process',
    },
    results,
    goals: { p99Ms: 25 },
  });
  if (results.some((r) => r.p99Ms === null)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
