'use strict';
/**
 * `npm run bench` runs every benchmark; `npm run bench -- NAME [NAME…]` runs
 * those. Each runs in a process of its own and writes bench/results/NAME.json.
 */
const { spawnSync } = require('node:child_process');
const { join } = require('node:path');

const ALL = ['outbox', 'ingest', 'connections', 'storm', 'agent-idle', 'agent-stop', 'usb-decision', 'usb-rig', 'login-claim', 'process-watch'];
const wanted = process.argv.slice(2);
const unknown = wanted.filter((n) => !ALL.includes(n));
if (unknown.length > 0) {
  process.stderr.write(`INV_ERR_USAGE: unknown benchmark ${unknown.join(', ')}; benchmarks: ${ALL.join(', ')}\n`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted.length ? wanted : ALL) {
  process.stdout.write(`\n== ${name}\n`);
  const run = spawnSync(process.execPath, ['--expose-gc', join(__dirname, `${name}.js`)], { stdio: 'inherit' });
  if (run.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
