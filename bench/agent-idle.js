'use strict';
/**
 * The agent's resident memory after five minutes idle, next to a bare `node`
 * process started at the same time. Goal: at most 1.5× the bare process.
 * INVIGILATOR_BENCH_IDLE_SECONDS shortens the wait for a quick look.
 */
const { spawn } = require('node:child_process');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { ROOT, rssOf, sleep, tempDir, writeResult } = require('./lib');
const { startCollector } = require('./sim-agents');

const IDLE_SECONDS = Number(process.env.INVIGILATOR_BENCH_IDLE_SECONDS || 300);

async function main() {
  const dataDir = tempDir('idle-collector');
  const port = 19600 + Math.floor(Math.random() * 300);
  const collector = await startCollector(`sqlite:${join(dataDir, 'collector.db')}`, port, dataDir, { INVIGILATOR_ENROLLMENT_APPROVAL: 'automatic' });
  const token = readFileSync(join(dataDir, 'enrollment-token'), 'utf8').trim();
  const agent = spawn(
    process.execPath,
    [join(ROOT, 'bin/invigilator.js'), 'agent', '--collector', `ws://127.0.0.1:${port}/agent`, '--data-dir', tempDir('idle-agent'), '--log-level', 'warn'],
    {
      stdio: 'ignore',
      env: { ...process.env, INVIGILATOR_ENROLLMENT_TOKEN: token },
    },
  );
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await sleep(IDLE_SECONDS * 1000);
  const agentRssBytes = rssOf(agent.pid);
  const bareNodeRssBytes = rssOf(bare.pid);
  for (const p of [agent, bare, collector]) p.kill('SIGTERM');
  writeResult('agent-idle', {
    idleSeconds: IDLE_SECONDS,
    agentRssBytes,
    bareNodeRssBytes,
    ratio: Number((agentRssBytes / bareNodeRssBytes).toFixed(2)),
    goalRatio: 1.5,
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
