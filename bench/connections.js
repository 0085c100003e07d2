'use strict';
/**
 * 10,000 authenticated, idle agent connections to one collector process; its
 * resident memory once they are all up. Goal ≤ 300 MB (a bare ws server holds
 * 10,000 idle connections in about 120 MB here).
 */
const { join } = require('node:path');
const { rssOf, sleep, tempDir, writeResult } = require('./lib');
const { SimAgent, preEnroll, startCollector, connectAll } = require('./sim-agents');

const CONNECTIONS = Number(process.env.INVIGILATOR_BENCH_CONNECTIONS || 10_000);

async function main() {
  const dir = tempDir('connections');
  const db = `sqlite:${join(dir, 'collector.db')}`;
  await preEnroll(db, CONNECTIONS);
  const port = 19000 + Math.floor(Math.random() * 500);
  const collector = await startCollector(db, port, dir);
  const agents = Array.from({ length: CONNECTIONS }, (_, i) => new SimAgent(`ws://127.0.0.1:${port}/agent`, i));
  const started = Date.now();
  await connectAll(agents, 500);
  const connectSeconds = (Date.now() - started) / 1000;
  await sleep(5000);
  const collectorRssBytes = rssOf(collector.pid);
  agents.forEach((a) => a.close());
  collector.kill('SIGTERM');
  writeResult('connections', {
    connections: CONNECTIONS,
    collectorRssBytes,
    collectorRssMB: Math.round(collectorRssBytes / 1048576),
    connectSeconds,
    goalRssBytes: 300 * 1024 * 1024,
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
