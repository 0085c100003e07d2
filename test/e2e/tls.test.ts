import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCollector } from '../../collector/collector';
import { createEnrollmentToken } from '../../collector/http-api';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import { preset } from '../../shared/policy/presets';
import { eventually, tempDir } from '../support/cli';
import { silentLogger, startTestAgent } from '../support/harness';
import { TEST_SECRET_KEY } from '../support/secret-key';

/** A school CA and a server certificate for 127.0.0.1 signed by it, made with openssl for this run. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string; otherCa: string } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=Test School CA');
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.pem', '-days', '1', '-subj', '/CN=Someone Else CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'ext.cnf');
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), otherCa: join(dir, 'other.pem') };
}

describe('the link over TLS', () => {
  const dir = tempDir('tls');
  const certs = makeCertificates(dir);

  async function tlsCollector() {
    const store = new SqliteStore(join(tempDir('tls-db'), 'collector.db'), { secretKey: TEST_SECRET_KEY });
    await store.migrate();
    const collector = buildCollector({
      store,
      logger: silentLogger(),
      policy: preset('basildon-primary')!,
      version: 'test',
      tls: { cert: readFileSync(certs.cert), key: readFileSync(certs.key) },
    });
    const { port } = await collector.listen(0, '127.0.0.1');
    const { token } = await createEnrollmentToken(store, Date.now(), 'tls', 1, { approval: 'automatic' });
    return { store, collector, url: `wss://127.0.0.1:${port}/agent`, token, close: async () => (await collector.close(), await store.close()) };
  }

  it('enrolls and delivers over wss:// when the agent trusts the school CA', async () => {
    const c = await tlsCollector();
    const agent = await startTestAgent(c.url, c.token, undefined, {}, certs.ca);
    await eventually(() => (agent.link.currentState === 'ready' && agent.outbox.pendingCount === 0 ? true : undefined));
    expect((await c.store.queryEvents({ type: 'agent.started', limit: 5 })).events).toHaveLength(1);
    await agent.stop('test over');
    await c.close();
  });

  it('refuses a collector whose certificate another CA signed, and keeps the events', async () => {
    const c = await tlsCollector();
    const agent = await startTestAgent(c.url, c.token, undefined, { backoffBaseMs: 50, backoffCapMs: 100 }, certs.otherCa);
    await new Promise((r) => setTimeout(r, 500));
    expect(agent.link.currentState).not.toBe('ready');
    expect(agent.outbox.pendingCount).toBe(1);
    expect(await c.store.listDevices()).toEqual([]);
    await agent.stop('test over');
    await c.close();
  });
});
