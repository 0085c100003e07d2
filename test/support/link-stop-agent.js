'use strict';
/**
 * A real process holding the built link and outbox, for the stop tests: it
 * starts the link and stops it at once (while the link is still reading its
 * identity), closes the outbox, prints `stopped`, and should then exit on its
 * own. Anything the link left open after stop() keeps it alive.
 *
 * usage: node link-stop-agent.js DATA_DIR COLLECTOR_URL ENROLLMENT_TOKEN
 */
const { join } = require('node:path');
const dist = join(__dirname, '../../dist');
const { Link, DEFAULT_LINK_TUNING } = require(join(dist, 'agent/link/link.js'));
const { Outbox, DEFAULT_OUTBOX_OPTIONS } = require(join(dist, 'agent/outbox/outbox.js'));
const { IdentityFile } = require(join(dist, 'agent/identity.js'));
const { createLogger } = require(join(dist, 'node-common/logging.js'));

const [dataDir, url, token] = process.argv.slice(2);

async function main() {
  const logger = createLogger({ program: 'link-stop', level: 'error', console: false });
  const { outbox } = await Outbox.open({ ...DEFAULT_OUTBOX_OPTIONS, dir: join(dataDir, 'outbox') });
  await outbox.append({
    type: 'agent.started',
    severity: 'info',
    time: new Date().toISOString(),
    data: { agentVersion: '0.0.0-test', platform: 'linux', hostname: 'test' },
  });
  const link = new Link({
    ...DEFAULT_LINK_TUNING,
    url,
    allowInsecure: false,
    enrollmentToken: token,
    identity: new IdentityFile(dataDir),
    outbox,
    logger,
    agentVersion: '0.0.0-test',
    hostname: 'link-stop',
    platform: 'linux',
    policyRevision: () => undefined,
    onPolicy: () => undefined,
    onCommand: () => undefined,
  });
  link.start();
  await link.stop();
  await outbox.close();
  process.stdout.write('stopped\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
