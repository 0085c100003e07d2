import { join } from 'node:path';
import { startAgent } from '../../agent/agent';
import { LogindSessions } from '../../agent/sessions/session-directory';
import { preset } from '../../shared/policy/presets';
import { eventually, tempDir } from '../support/cli';
import { silentLogger, startTestCollector } from '../support/harness';
import { agentConfigFor, trayClient } from '../support/tray-client';
import { logindDesktop } from '../support/logind';

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
    logindDesktop(logind, '3', AMY, 'amy.p');
    const sessions = new LogindSessions(logind);
    const agent = await startAgent({
      config: await agentConfigFor(c, dataDir, 'carrington-infant'),
      fallbackPolicy: preset('carrington-infant')!,
      logger: silentLogger(),
      platform: 'linux',
      version: '0.0.0-test',
      userTrays: { dir: join(dataDir, 'trays'), users: sessions },
      sessions: { directory: sessions, control: { signOut: async () => undefined } },
    });
    const tray = trayClient(join(dataDir, 'trays', `${AMY}.sock`), '3');
    await eventually(() => (tray.notices.length > 0 ? true : undefined));

    // Act: the tray is killed; Amy is still signed in.
    tray.socket.destroy();

    // Assert
    const tamper = await eventually(async () => (await c.store.queryEvents({ type: 'agent.tamper', limit: 10 })).events[0]);
    expect(tamper).toMatchObject({ severity: 'warning', data: { target: 'tray', action: 'killed' } });

    await agent.stop('test over');
    await c.close();
  });
});
