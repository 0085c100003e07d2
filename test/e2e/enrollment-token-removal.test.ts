import { chmodSync, chownSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UNPRIVILEGED, eventually, startCli, tempDir } from '../support/cli';
import { type TestCollector, startTestCollector } from '../support/harness';

/**
 * The enrollment token lets anyone who has it enroll devices, so it must not
 * stay on every laptop: once the agent has its identity, it removes the token
 * from the configuration file it read it from. Real agent process, real
 * collector on loopback.
 */
describe('the enrollment token in the agent configuration file', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startTestCollector();
  });
  afterAll(() => c.close());

  function agentConfig(dataDir: string, token: string) {
    return {
      collector: { url: c.agentUrl, enrollmentToken: token },
      dataDir,
      logLevel: 'info',
      policy: 'carrington-infant',
      tray: { socket: join(dataDir, 'tray.sock'), userSockets: 'off' },
      usb: { control: 'off' },
      sessions: { control: 'off' },
      software: { control: 'off' },
    };
  }
  const withoutToken = (config: ReturnType<typeof agentConfig>) => ({ ...config, collector: { url: config.collector.url } });

  async function runAgentUntil(file: string, until: RegExp, as: { unprivileged?: boolean } = {}): Promise<string> {
    const run = startCli(['agent', '--config', file], {}, as);
    try {
      await eventually(() => (until.test(run.output()) ? true : undefined), 400);
      return run.output();
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  }

  it('is removed once the agent has enrolled, keeping every other setting, the layout and the mode', async () => {
    const dataDir = tempDir('token-agent');
    const file = join(tempDir('token-config'), 'agent.json');
    const config = agentConfig(dataDir, await c.enrollmentToken());
    writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o640 });
    chmodSync(file, 0o640);

    const output = await runAgentUntil(file, /removed the enrollment token/);

    expect(output).toMatch(/enrolled with the collector/);
    expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify(withoutToken(config), null, 2)}\n`);
    expect((statSync(file).mode & 0o7777).toString(8)).toBe('640');
    expect(await c.store.listDevices()).toHaveLength(1);
  });

  it('put back by a deployment tool, it is ignored (the agent proves its identity) and removed again', async () => {
    const dataDir = tempDir('token-agent');
    const file = join(tempDir('token-config'), 'agent.json');
    const token = await c.enrollmentToken();
    const config = agentConfig(dataDir, token);
    writeFileSync(file, JSON.stringify(config));
    await runAgentUntil(file, /removed the enrollment token/);
    const devices = (await c.store.listDevices()).length;

    // The tool writes its copy back; the token has meanwhile been revoked, so enrolling with it again would fail.
    writeFileSync(file, JSON.stringify(config));
    const tokens = await c.store.listEnrollmentTokens();
    for (const t of tokens) await c.store.revokeEnrollmentToken(t.id, new Date().toISOString());
    const output = await runAgentUntil(
      file,
      /connected to the collector[\s\S]*removed the enrollment token|removed the enrollment token[\s\S]*connected to the collector/,
    );

    expect(output).not.toMatch(/enrolled with the collector/);
    expect(output).not.toContain('INV_ERR_ENROLL_TOKEN_INVALID');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(withoutToken(config));
    expect(await c.store.listDevices()).toHaveLength(devices);
  });

  it('in a file the agent cannot write, stays, with a warning saying what to do', async () => {
    const dataDir = tempDir('token-agent');
    if (UNPRIVILEGED) chownSync(dataDir, UNPRIVILEGED.uid, UNPRIVILEGED.gid);
    const folder = tempDir('token-config');
    const file = join(folder, 'agent.json');
    const text = JSON.stringify(agentConfig(dataDir, await c.enrollmentToken()));
    writeFileSync(file, text);
    chmodSync(file, 0o444);
    chmodSync(folder, UNPRIVILEGED ? 0o755 : 0o555);

    const output = await runAgentUntil(file, /enrollment token is still in/, { unprivileged: true });

    expect(output).toMatch(/connected to the collector/);
    expect(output).toMatch(/remove collector\.enrollmentToken from/);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });
});
