'use strict';
/**
 * A real agent process for crash tests: the built outbox and link, producing
 * `command.completed` events labelled k-FROM … k-TO as fast as the outbox takes
 * them. It prints `c K` once event K is durably in the outbox, and `done`
 * once the collector has acknowledged everything. Tests kill it with SIGKILL
 * at any moment and start it again.
 *
 * usage: node burst-agent.js DATA_DIR COLLECTOR_URL ENROLLMENT_TOKEN FROM TO
 */
const { join } = require('node:path');
const dist = join(__dirname, '../../dist');
const { startAgent } = require(join(dist, 'agent/agent.js'));
const { preset } = require(join(dist, 'shared/policy/presets/index.js'));
const { createLogger } = require(join(dist, 'node-common/logging.js'));

const [dataDir, url, token, from, to] = process.argv.slice(2);

async function main() {
  const agent = await startAgent({
    config: {
      collector: { url, enrollmentToken: token, allowInsecure: false },
      dataDir,
      logLevel: 'error',
      policy: 'basildon-primary',
      outbox: { capBytes: 256 * 1024 * 1024 },
    },
    fallbackPolicy: preset('basildon-primary'),
    logger: createLogger({ program: 'burst', level: 'error', console: false }),
    platform: 'linux',
    version: '0.0.0-test',
    linkTuning: { backoffBaseMs: 50, backoffCapMs: 500 },
  });
  const concurrency = 64;
  let next = Number(from);
  const last = Number(to);
  const worker = async () => {
    while (next <= last) {
      const k = next++;
      await agent.record({ type: 'command.completed', severity: 'info', time: new Date().toISOString(), data: { commandId: `k-${k}`, ok: true } });
      process.stdout.write(`c ${k}\n`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  while (agent.outbox.pendingCount > 0) await new Promise((r) => setTimeout(r, 20));
  process.stdout.write('done\n');
  await agent.link.stop();
  await agent.outbox.close();
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
