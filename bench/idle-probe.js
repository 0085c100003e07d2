'use strict';
/**
 * For investigating the idle agent only, never loaded by the product: preload
 * it with `INVIGILATOR_BENCH_AGENT_FLAGS="-r ./bench/idle-probe.js"` and set
 * INVIGILATOR_PROBE_OUT to a folder. Every INVIGILATOR_PROBE_EVERY_MS (10 s)
 * it appends one JSON line to `<out>/<pid>.jsonl`: memory by V8 space, the
 * programs spawned since the last line (by command) and the CPU they took to
 * start, and the intervals and timeouts armed (by where in the code).
 */
const childProcess = require('node:child_process');
const { appendFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');
const v8 = require('node:v8');

const OUT = process.env.INVIGILATOR_PROBE_OUT;
const EVERY = Number(process.env.INVIGILATOR_PROBE_EVERY_MS || 10_000);
if (OUT) {
  mkdirSync(OUT, { recursive: true });
  const file = join(OUT, `${process.pid}.jsonl`);
  const spawns = new Map();
  const timers = new Map();
  const where = () => {
    const lines = (new Error().stack || '').split('\n').slice(3);
    const own = lines.find((l) => l.includes('/dist/') && !l.includes('node_modules')) || lines[0] || '';
    return own
      .trim()
      .replace(/^at /, '')
      .replace(/.*\/dist\//, '');
  };
  const count = (map, key) => map.set(key, (map.get(key) || 0) + 1);

  for (const name of ['spawn', 'execFile']) {
    const original = childProcess[name];
    childProcess[name] = function probed(command, ...rest) {
      const args = Array.isArray(rest[0]) ? rest[0].slice(0, 2).join(' ') : '';
      count(spawns, `${command} ${args}`.trim());
      return original.call(this, command, ...rest);
    };
  }
  for (const name of ['setInterval', 'setTimeout']) {
    const original = global[name];
    global[name] = function probed(fn, ms, ...rest) {
      if (name === 'setInterval' || ms >= 1000) count(timers, `${name} ${ms} ${where()}`);
      return original.call(this, fn, ms, ...rest);
    };
  }
  const started = Date.now();
  const write = () => {
    const m = process.memoryUsage();
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.space_used_size / 1024)]));
    const line = {
      atSeconds: Math.round((Date.now() - started) / 1000),
      rssKb: Math.round(m.rss / 1024),
      heapUsedKb: Math.round(m.heapUsed / 1024),
      heapTotalKb: Math.round(m.heapTotal / 1024),
      externalKb: Math.round(m.external / 1024),
      arrayBuffersKb: Math.round(m.arrayBuffers / 1024),
      spacesUsedKb: spaces,
      cpuUs: process.cpuUsage(),
      modules: Object.keys(require.cache).length,
      spawns: Object.fromEntries(spawns),
      timers: Object.fromEntries(timers),
    };
    spawns.clear();
    timers.clear();
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  };
  const original = global.setInterval;
  original(write, EVERY).unref();
}
