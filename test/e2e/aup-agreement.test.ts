import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent } from '../../agent/agent';
import type { SessionRef } from '../../agent/sessions/session-control';
import { LogindSessions } from '../../agent/sessions/session-directory';
import { preset } from '../../shared/policy/presets';
import { eventually, tempDir } from '../support/cli';
import { silentLogger, startTestCollector } from '../support/harness';
import { agentConfigFor, trayClient } from '../support/tray-client';
import { logindDesktop } from '../support/logind';

const AMY = 1000;
const asRoot = process.getuid?.() === 0;
if (!asRoot) process.stdout.write('aup-agreement: skipping: the agent gives each user a socket they own, which needs root\n');
const describeAsRoot = asRoot ? describe : describe.skip;

describeAsRoot('the acceptable-use agreement, from tray to collector', () => {
  it("is put to Amy when her tray starts; declining is recorded at the collector and signs her out (Basildon's policy)", async () => {
    // Arrange: a collector, and an agent on a computer where logind says Amy has a desktop session 3.
    const c = await startTestCollector({ policy: preset('basildon-primary')! });
    const dataDir = tempDir('aup-e2e');
    const logind = tempDir('logind');
    logindDesktop(logind, '3', AMY, 'amy');
    const sessions = new LogindSessions(logind);
    // Logging a user off cannot happen here; the command it would run is checked in sessions.test.ts.
    const signedOut: SessionRef[] = [];
    const agent = await startAgent({
      config: await agentConfigFor(c, dataDir, 'basildon-primary'),
      fallbackPolicy: preset('basildon-primary')!,
      logger: silentLogger(),
      platform: 'linux',
      version: '0.0.0-test',
      userTrays: { dir: join(dataDir, 'trays'), users: sessions },
      // What logind does on terminate-session: the session's file goes.
      sessions: { directory: sessions, control: { signOut: async (s) => (signedOut.push(s), rmSync(join(logind, s.sessionId))) } },
    });

    // Act: Amy's tray connects and is shown the agreement; she declines.
    const tray = trayClient(join(dataDir, 'trays', `${AMY}.sock`), '3');
    const agreement = await eventually(() => tray.notices.find((n) => n.kind === 'aup-agreement'));
    expect(agreement).toMatchObject({ actions: ['agree', 'decline'], clause: { id: 'bps-monitoring' } });
    tray.send({ v: 1, type: 'tray.answer', noticeId: agreement.noticeId, action: 'decline' });

    // Assert: the network manager sees who declined which version, and the sign-out.
    const declined = await eventually(async () => (await c.store.queryEvents({ type: 'aup.declined', limit: 10 })).events[0]);
    expect(declined.data).toEqual({ sessionId: '3', user: 'amy', uid: AMY, policyId: 'basildon-primary', version: 1, signedOut: true });
    const logoff = await eventually(async () => (await c.store.queryEvents({ type: 'session.logoff', limit: 10 })).events[0]);
    expect(logoff.data).toEqual({ sessionId: '3', reason: 'aup-declined', confirmed: true });
    expect(signedOut).toEqual([{ sessionId: '3', uid: AMY }]);
    expect(agent.agreements?.answerOf(AMY)?.decision).toBe('declined');

    tray.socket.destroy();
    await agent.stop('test over');
    await c.close();
  });
});
