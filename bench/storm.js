'use strict';
/**
 * A Monday morning: 10,000 agents reconnect at once, each with 100 events
 * buffered. Goal: all 1,000,000 stored exactly once within 60 s, while
 * `GET /api/devices` keeps p99 ≤ 500 ms.
 */
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const Database = require('better-sqlite3');
const { percentile, tempDir, writeResult } = require('./lib');
const { SimAgent, preEnroll, startCollector } = require('./sim-agents');

const AGENTS = Number(process.env.INVIGILATOR_BENCH_STORM_AGENTS || 10_000);
const BUFFERED = 100;
const BATCH = 50;

async function main() {
  const dir = tempDir('storm');
  const file = join(dir, 'collector.db');
  await preEnroll(`sqlite:${file}`, AGENTS);
  const port = 19500 + Math.floor(Math.random() * 90);
  const collector = await startCollector(`sqlite:${file}`, port, dir);
  const token = readFileSync(join(dir, 'admin-token'), 'utf8').trim();

  const apiLatencies = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const t = process.hrtime.bigint();
      const res = await fetch(`http://127.0.0.1:${port}/api/devices`, { headers: { authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      apiLatencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  const started = Date.now();
  const agents = Array.from({ length: AGENTS }, (_, i) => new SimAgent(`ws://127.0.0.1:${port}/agent`, i));
  await Promise.all(
    agents.map(async (a) => {
      await a.connect(200);
      await Promise.all(Array.from({ length: BUFFERED / BATCH }, () => a.sendBatch(BATCH)));
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  polling = false;
  await poller;
  agents.forEach((a) => a.close());
  collector.kill('SIGTERM');
  await new Promise((r) => collector.once('exit', r));

  const db = new Database(file, { readonly: true });
  const { stored, distinctIds } = db
    .prepare("SELECT COUNT(*) AS stored, COUNT(DISTINCT event_id) AS distinctIds FROM events WHERE device_id LIKE 'dev-bench-%'")
    .get();
  db.close();
  writeResult('storm', {
    agents: AGENTS,
    eventsPerAgent: BUFFERED,
    stored,
    duplicates: stored - distinctIds,
    seconds,
    apiP99Ms: Number(percentile(apiLatencies, 99).toFixed(1)),
    apiCalls: apiLatencies.length,
    goals: { stored: AGENTS * BUFFERED, seconds: 60, apiP99Ms: 500 },
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
