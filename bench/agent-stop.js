'use strict';
/**
 * SIGTERM to exit for `invigilator agent` holding 100,000 unsent events, in
 * the moments a stop can land: while it opens its outbox, waiting to
 * reconnect to a collector it cannot reach, just as it starts to connect,
 * and while it is sending. Goal:
 * every stop within 5 s (a service manager kills what takes longer), exit 0.
 * INVIGILATOR_BENCH_STOP_ROUNDS sets the rounds per case (default 3).
 */
const { spawn } = require('node:child_process');
const { readFileSync } = require('node:fs');
const { createServer } = require('node:net');
const { join } = require('node:path');
const { DIST, ROOT, tempDir, writeResult } = require('./lib');
const { startCollector } = require('./sim-agents');
const { Outbox, DEFAULT_OUTBOX_OPTIONS } = require(join(DIST, 'agent/outbox/outbox.js'));

const UNSENT = 100_000;
const ROUNDS = Number(process.env.INVIGILATOR_BENCH_STOP_ROUNDS || 3);

async function fill(dataDir, count) {
  const { outbox } = await Outbox.open({ ...DEFAULT_OUTBOX_OPTIONS, dir: join(dataDir, 'outbox'), sync: false });
  for (let k = outbox.pendingCount; k < count;) {
    const appends = [];
    for (let i = 0; i < 1000 && k < count; i++, k++)
      appends.push(outbox.append({ type: 'command.completed', severity: 'info', time: new Date().toISOString(), data: { commandId: `k-${k}`, ok: true } }));
    await Promise.all(appends);
  }
  await outbox.close();
}

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts the agent, waits for `when` to have matched `times` times (plus `delayMs`), sends SIGTERM and times the exit. */
function stopOnce(dataDir, url, token, when, times, delayMs) {
  return new Promise((resolve, reject) => {
    const args = [
      'agent',
      '--collector',
      url,
      '--data-dir',
      dataDir,
      '--log-level',
      'info',
      '--usb-control',
      'off',
      '--sessions-control',
      'off',
      '--software-control',
      'off',
    ];
    const agent = spawn(process.execPath, [join(ROOT, 'bin/invigilator.js'), ...args], {
      env: { ...process.env, INVIGILATOR_ENROLLMENT_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let signalled;
    const giveUp = setTimeout(() => {
      agent.kill('SIGKILL');
      reject(new Error(`no ${when} within 120 s: ${output.slice(-1000)}`));
    }, 120_000);
    const watch = (d) => {
      output += d;
      if (signalled === undefined && (when === null || (output.match(new RegExp(when.source, 'g')) || []).length >= times)) {
        signalled = 0;
        setTimeout(() => {
          signalled = process.hrtime.bigint();
          agent.kill('SIGTERM');
        }, delayMs);
      }
    };
    agent.stdout.on('data', watch);
    agent.stderr.on('data', watch);
    if (when === null) watch('');
    agent.on('exit', (code, signal) => {
      clearTimeout(giveUp);
      if (!signalled) return reject(new Error(`the agent exited before it was stopped (${code ?? signal}): ${output.slice(-1000)}`));
      resolve({ seconds: Number(process.hrtime.bigint() - signalled) / 1e9, code, signal });
    });
  });
}

async function main() {
  const collectorDir = tempDir('stop-collector');
  const port = 19300 + Math.floor(Math.random() * 300);
  // Approves at once: the sending case stops an agent that is connected and delivering, not one waiting for approval.
  const collector = await startCollector(`sqlite:${join(collectorDir, 'collector.db')}`, port, collectorDir, { INVIGILATOR_ENROLLMENT_APPROVAL: 'automatic' });
  const token = readFileSync(join(collectorDir, 'enrollment-token'), 'utf8').trim();
  const up = `ws://127.0.0.1:${port}/agent`;
  const down = `ws://127.0.0.1:${await freePort()}/agent`;
  const cases = {
    // While it reads its outbox, before it has started: the stop waits for the start.
    opening: { url: up, when: null, times: 0, delayMs: 700 },
    backoff: { url: down, when: /collector connection closed/, times: 2, delayMs: 0 },
    starting: { url: up, when: /agent started/, times: 1, delayMs: 0 },
    sending: { url: up, when: /connected to the collector/, times: 1, delayMs: 500 },
  };
  const results = {};
  const exits = [];
  try {
    for (const [name, c] of Object.entries(cases)) {
      results[name] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const dataDir = tempDir('stop-agent');
        await fill(dataDir, UNSENT);
        const run = await stopOnce(dataDir, c.url, token, c.when, c.times, c.delayMs);
        results[name].push(Number(run.seconds.toFixed(3)));
        exits.push(run.signal ?? run.code);
      }
    }
  } finally {
    collector.kill('SIGTERM');
  }
  const all = Object.values(results).flat();
  writeResult('agent-stop', {
    unsentEvents: UNSENT,
    roundsPerCase: ROUNDS,
    stopSeconds: Math.max(...all),
    stopSecondsByCase: results,
    exitCodes: [...new Set(exits)],
    goalSeconds: 5,
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
