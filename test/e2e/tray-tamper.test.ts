import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startAgent } from '../../agent/agent';
import { LogindSessions } from '../../agent/sessions/session-directory';
import { preset } from '../../shared/policy/presets';
import { eventually, tempDir } from '../support/cli';
import { silentLogger, startTestCollector } from '../support/harness';

const AMY = 1000;
const asRoot = process.getuid?.() === 0;
if (!asRoot) process.stdout.write('tray-tamper: skipping: the agent gives each user a socket they own, which needs root\n');
const describeAsRoot = asRoot ? describe : describe.skip;

describeAsRoot('a tray killed while its user is still signed in', () => {
  it('is reported to the network manager as agent.tamper', async () => {
    // Arrange: Amy signed in (session 3) with her tray connected.
    const c = await startTestCollector({ policy: preset('carrington-infant')! });
    const dataDir = tempDir('tray-tamper');
    const logind = tempDir('logind');
    writeFileSync(join(logind, '3'), `UID=${AMY}\nUSER=amy.p\nACTIVE=1\nREMOTE=0\nTYPE=x11\nCLASS=user\n`);
    const sessions = new LogindSessions(logind);
    const agent = await startAgent({
      config: {
        collector: { url: c.agentUrl, enrollmentToken: await c.enrollmentToken(), allowInsecure: false },
        dataDir,
        logLevel: 'error',
        policy: 'carrington-infant',
        outbox: { capBytes: 64 * 1024 * 1024 },
      },
      fallbackPolicy: preset('carrington-infant')!,
      logger: silentLogger(),
      platform: 'linux',
      version: '0.0.0-test',
      userTrays: { dir: join(dataDir, 'trays'), users: sessions },
      sessions: { directory: sessions, control: { signOut: async () => undefined } },
    });
    const tray = connect(join(dataDir, 'trays', `${AMY}.sock`), () =>
      tray.write(`${JSON.stringify({ v: 1, type: 'tray.hello', trayVersion: '1', sessionId: '3' })}\n`),
    );
    await eventually(() => (tray.readableLength > 0 || tray.bytesRead > 0 ? true : undefined));

    // Act: the tray is killed; Amy is still signed in.
    tray.destroy();

    // Assert
    const tamper = await eventually(async () => (await c.store.queryEvents({ type: 'agent.tamper', limit: 10 })).events[0]);
    expect(tamper).toMatchObject({ severity: 'warning', data: { target: 'tray', action: 'killed' } });

    await agent.stop('test over');
    await c.close();
  });
});
