'use strict';
/**
 * The Linux process source (/proc polling) at its default interval, with 300
 * extra processes (`sleep 600`) running: its CPU (process.cpuUsage of a child
 * process that runs only the watcher, averaged over the whole run) and how
 * long after a process is spawned the watcher reports it (50 spawns at random
 * moments; p99 of report time minus spawn time). Goals: cpuPercent <= 1 (of
 * one core), detectP99Ms <= 2000. INVIGILATOR_BENCH_WATCH_SECONDS shortens the
 * run (60 s by default). Every process started here is killed at the end,
 * and on any exit.
 */
const { spawn } = require('node:child_process');
const { join } = require('node:path');
const { readdirSync } = require('node:fs');
const { DIST, percentile, writeResult, sleep } = require('./lib');

const EXTRA = 300;
const SPAWNS = 50;
const SECONDS = Number(process.env.INVIGILATOR_BENCH_WATCH_SECONDS || 60);

/** Milliseconds on a clock both processes share. */
const clock = () => performance.timeOrigin + performance.now();

/** The watcher: a child process running the source and nothing else. */
function runWatcher() {
  const { ProcfsProcessSource } = require(join(DIST, 'agent/software/programs/linux/process-source-linux.js'));
  const source = new ProcfsProcessSource();
  source
    .start((p, change) => {
      if (change === 'started') process.send({ type: 'seen', pid: p.pid, at: clock() });
    })
    .then(() => process.send({ type: 'ready' }));
  process.on('message', (m) => {
    if (m.type === 'cpu') process.send({ type: 'cpu', usage: process.cpuUsage(), at: clock(), stats: source.stats });
    if (m.type === 'stop') source.stop().then(() => process.exit(0));
  });
}

const started = [];
function killAll() {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killAll();
    process.exit(1);
  });
}

function startSleep() {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  started.push(child);
  return child;
}

async function main() {
  for (let i = 0; i < EXTRA; i++) startSleep();
  const processCount = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length;

  const watcher = spawn(process.execPath, [__filename, '--watcher'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  started.push(watcher);
  const seen = new Map();
  const waiting = new Map();
  watcher.on('message', (m) => {
    if (m.type === 'seen') seen.set(m.pid, m.at);
    const resolve = waiting.get(m.type);
    if (resolve) {
      waiting.delete(m.type);
      resolve(m);
    }
  });
  const ask = (type, send = true) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the watcher did not answer ${type}`)), 30_000);
      waiting.set(type, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      if (send) watcher.send({ type });
    });
  await ask('ready', false);
  // Let the first poll's work (every process read once) fall outside the measurement.
  await sleep(2000);

  const before = await ask('cpu');
  const windowMs = SECONDS * 1000;
  // Random moments in the window, the last a few seconds before its end so every spawn can be seen inside it.
  const moments = Array.from({ length: SPAWNS }, () => Math.random() * Math.max(1000, windowMs - 4000)).sort((a, b) => a - b);
  const spawnedAt = new Map();
  const t0 = clock();
  const samples = [];
  let last = before;
  let nextSample = t0 + 10_000;
  for (const moment of moments) {
    for (;;) {
      const now = clock();
      if (now >= t0 + moment) break;
      if (now >= nextSample) {
        const s = await ask('cpu');
        samples.push(cpuPercent(last, s));
        last = s;
        nextSample += 10_000;
      }
      await sleep(Math.min(t0 + moment - now, 200));
    }
    const at = clock();
    const child = startSleep();
    spawnedAt.set(child.pid, at);
  }
  while (clock() < t0 + windowMs) {
    if (clock() >= nextSample) {
      const s = await ask('cpu');
      samples.push(cpuPercent(last, s));
      last = s;
      nextSample += 10_000;
    }
    await sleep(200);
  }
  const after = await ask('cpu');
  if (last !== before && after.at - last.at > 1000) samples.push(cpuPercent(last, after));

  const latencies = [];
  let missed = 0;
  for (const [pid, at] of spawnedAt) {
    const detected = seen.get(pid);
    if (detected === undefined) missed++;
    else latencies.push(detected - at);
  }
  watcher.send({ type: 'stop' });
  await new Promise((resolve) => {
    const t = setTimeout(resolve, 5000);
    watcher.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
  killAll();

  const round = (x) => Math.round(x * 1000) / 1000;
  const cpu = cpuPercent(before, after);
  const p99 = percentile(latencies, 99);
  writeResult('process-watch', {
    source: 'ProcfsProcessSource (agent/software/programs/linux/process-source-linux.js), default interval',
    seconds: SECONDS,
    note: SECONDS < 60 ? `a shortened run of ${SECONDS} s (INVIGILATOR_BENCH_WATCH_SECONDS); the goal is measured over 60 s` : undefined,
    processesRunning: processCount,
    extraProcesses: EXTRA,
    spawns: SPAWNS,
    cpuPercent: round(cpu),
    cpuPercentPer10s: samples.map(round),
    detectP50Ms: round(percentile(latencies, 50)),
    detectP99Ms: round(p99),
    detectMaxMs: round(Math.max(...latencies)),
    missed,
    polls: after.stats.polls - before.stats.polls,
    processesRead: after.stats.read - before.stats.read,
    goal: { cpuPercent: 1, detectP99Ms: 2000 },
    met: cpu <= 1 && p99 <= 2000 && missed === 0,
    measures:
      'CPU of a child process running only the watcher (user + system time over wall time, one core = 100); detection = report time in the watcher minus the moment before spawn() in the parent, on one clock',
  });
}

function cpuPercent(a, b) {
  const used = b.usage.user + b.usage.system - (a.usage.user + a.usage.system);
  return (used / 1000 / (b.at - a.at)) * 100;
}

if (process.argv[2] === '--watcher') {
  runWatcher();
} else {
  main()
    .catch((e) => {
      process.stderr.write(`${e.stack || e}\n`);
      process.exitCode = 1;
    })
    .finally(killAll);
}
