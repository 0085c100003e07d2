'use strict';
/**
 * 1,000 simulated agents on loopback sending durably acknowledged batches to
 * one collector process: its sustained events/s against a bare baseline server
 * under the same load (the mean of a baseline run before the collector's and
 * one after), and p99 acknowledgement latency at an offered 50,000 events/s.
 * Also on PostgreSQL. Goals: ≥ 50,000 events/s, ≥ 0.7× baseline (issue 12
 * item 8), p99 ≤ 250 ms; PostgreSQL ≥ 20,000 events/s.
 */
const { spawn } = require('node:child_process');
const { join } = require('node:path');
const { Client } = require('pg');
const { percentile, writeResult, tempDir, sleep } = require('./lib');
const { SimAgent, preEnroll, startCollector, connectAll } = require('./sim-agents');

const AGENTS = 1000;
const BATCH = 50;
const SECONDS = 10;
const WARMUP_SECONDS = 2;
let nextPort = 18600 + Math.floor(Math.random() * 1000);

/** Every agent sends a batch, waits for its ack, and sends the next, for SECONDS; counts what was acknowledged after the warm-up. */
async function saturate(agents) {
  const stopAt = Date.now() + SECONDS * 1000;
  const measureFrom = Date.now() + WARMUP_SECONDS * 1000;
  let acked = 0;
  await Promise.all(
    agents.map(async (a) => {
      while (Date.now() < stopAt) {
        await a.sendBatch(BATCH);
        if (Date.now() >= measureFrom) acked += BATCH;
      }
    }),
  );
  return Math.round(acked / (SECONDS - WARMUP_SECONDS));
}

/** Each agent sends one batch a second at its own phase: AGENTS × BATCH events/s offered. Returns ack latencies. */
async function offered(agents, seconds) {
  const latencies = [];
  await Promise.all(
    agents.map(async (a, i) => {
      await sleep((i / agents.length) * 1000);
      for (let s = 0; s < seconds; s++) {
        const started = Date.now();
        latencies.push(await a.sendBatch(BATCH));
        await sleep(Math.max(0, 1000 - (Date.now() - started)));
      }
    }),
  );
  return latencies;
}

async function againstCollector(db) {
  await preEnroll(db, AGENTS);
  const port = nextPort++;
  const collector = await startCollector(db, port, tempDir('ingest-data'));
  const agents = Array.from({ length: AGENTS }, (_, i) => new SimAgent(`ws://127.0.0.1:${port}/agent`, i));
  await connectAll(agents);
  const eventsPerSecond = await saturate(agents);
  const latencies = db.startsWith('sqlite:') ? await offered(agents, 8) : [];
  agents.forEach((a) => a.close());
  collector.kill('SIGTERM');
  await new Promise((r) => collector.once('exit', r));
  return {
    eventsPerSecond,
    p99AckMs: latencies.length ? Number(percentile(latencies, 99).toFixed(1)) : null,
    p50AckMs: latencies.length ? Number(percentile(latencies, 50).toFixed(1)) : null,
  };
}

async function againstBaseline() {
  const port = nextPort++;
  const server = spawn(process.execPath, [join(__dirname, 'baseline-server.js'), join(tempDir('baseline'), 'baseline.db'), String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve) => server.stdout.once('data', resolve));
  const agents = Array.from({ length: AGENTS }, (_, i) => new SimAgent(`ws://127.0.0.1:${port}`, i, { authenticate: false }));
  await connectAll(agents);
  const eventsPerSecond = await saturate(agents);
  agents.forEach((a) => a.close());
  server.kill('SIGTERM');
  return eventsPerSecond;
}

async function postgresUrl() {
  const base = process.env.INVIGILATOR_TEST_POSTGRES || 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `inv_bench_${Date.now()}`;
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

async function main() {
  // Baseline, collector, baseline: the machine drifts over the minute a run takes (other work, the page
  // cache, the CPU's clock), and the mean of a baseline before and one after compares the collector with
  // the bare server under the same conditions, where one baseline first charged every drift to the collector.
  const baselineBefore = await againstBaseline();
  const sqlite = await againstCollector(`sqlite:${join(tempDir('ingest'), 'collector.db')}`);
  const baselineAfter = await againstBaseline();
  const baselineEventsPerSecond = Math.round((baselineBefore + baselineAfter) / 2);
  let postgres = { eventsPerSecond: null, error: null };
  try {
    const pg = await postgresUrl();
    postgres = await againstCollector(pg.url);
    await pg.drop();
  } catch (e) {
    postgres.error = String(e.message || e);
  }
  writeResult('ingest', {
    store: 'sqlite',
    agents: AGENTS,
    batchSize: BATCH,
    eventsPerSecond: sqlite.eventsPerSecond,
    baselineEventsPerSecond,
    baselineRuns: [baselineBefore, baselineAfter],
    ratio: Number((sqlite.eventsPerSecond / baselineEventsPerSecond).toFixed(2)),
    p99AckMs: sqlite.p99AckMs,
    p50AckMs: sqlite.p50AckMs,
    offeredEventsPerSecondForLatency: AGENTS * BATCH,
    postgres: { store: 'postgres', eventsPerSecond: postgres.eventsPerSecond, ...(postgres.error ? { error: postgres.error } : {}) },
    goals: { eventsPerSecond: 50_000, ratio: 0.7, p99AckMs: 250, postgresEventsPerSecond: 20_000 },
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
