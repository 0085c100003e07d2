'use strict';
/** Shared by the benchmarks: where the built code is, percentiles, and writing results with the machine's facts. */
const { mkdirSync, writeFileSync, readFileSync } = require('node:fs');
const { cpus, totalmem, tmpdir } = require('node:os');
const { join } = require('node:path');
const { mkdtempSync } = require('node:fs');

const ROOT = join(__dirname, '..');
const DIST = join(ROOT, 'dist');

function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function writeResult(name, figures) {
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const result = {
    benchmark: name,
    date: new Date().toISOString(),
    machine: { cores: cpus().length, memoryBytes: totalmem(), node: process.version },
    ...figures,
  };
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return result;
}

function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), `invigilator-bench-${prefix}-`));
}

/** Resident memory of a process, in bytes, from /proc (Linux). */
function rssOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]);
  return kb * 1024;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { ROOT, DIST, percentile, writeResult, tempDir, rssOf, sleep };
