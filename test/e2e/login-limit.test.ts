import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type RunningAgent, startAgent } from '../../agent/agent';
import type { SessionControl } from '../../agent/sessions/session-control';
import { LogindSessions } from '../../agent/sessions/session-directory';
import { preset } from '../../shared/policy/presets';
import { eventually, tempDir } from '../support/cli';
import { type TestCollector, silentLogger, startTestCollector } from '../support/harness';
import { agentConfigFor, trayClient } from '../support/tray-client';
import { logindDesktop } from '../support/logind';

const AMY = 1000;
const asRoot = process.getuid?.() === 0;
if (!asRoot) process.stdout.write('login-limit e2e: skipping: the agents give each user a socket they own, which needs root\n');
const describeAsRoot = asRoot ? describe : describe.skip;

/**
 * One school computer: a real agent whose logind folder says Amy is signed in
 * as session `sessionId`. Signing out cannot happen here, so the agent's
 * SessionControl does what logind would: the session's file goes.
 */
async function schoolComputer(c: TestCollector, name: string, sessionId: string) {
  const dataDir = tempDir(`login-${name}`);
  const logind = tempDir(`logind-${name}`);
  logindDesktop(logind, sessionId, AMY, 'amy.p');
  const directory = new LogindSessions(logind);
  const signedOut: string[] = [];
  const control: SessionControl = {
    signOut: async (s) => {
      signedOut.push(s.sessionId);
      rmSync(join(logind, s.sessionId), { force: true });
    },
  };
  const agent: RunningAgent = await startAgent({
    config: await agentConfigFor(c, dataDir, 'basildon-primary'),
    fallbackPolicy: preset('basildon-primary')!,
    logger: silentLogger(),
    platform: 'linux',
    version: '0.0.0-test',
    linkTuning: { backoffBaseMs: 50, backoffCapMs: 200 },
    userTrays: { dir: join(dataDir, 'trays'), users: directory },
    sessions: { directory, control },
    sessionPollMs: 100,
  });
  return { agent, signedOut, traySocket: join(dataDir, 'trays', `${AMY}.sock`) };
}

describeAsRoot('two school computers per login, end to end', () => {
  it('refuses Amy a third computer, shows her the other two, and lets her in once she signs one of them out remotely', async () => {
    // Arrange: a collector and Amy signed in on the library and art-room computers.
    const c = await startTestCollector({ policy: preset('basildon-primary')! });
    const library = await schoolComputer(c, 'library', '9');
    const art = await schoolComputer(c, 'art', '4');
    await eventually(async () => ((await c.store.queryEvents({ type: 'login-limit.granted', limit: 10 })).events.length === 2 ? true : undefined));

    // Act: she signs in on a third.
    const third = await schoolComputer(c, 'class3', '3');
    const amysTray = trayClient(third.traySocket, '3');

    // Assert: refused, and told which computers hold her places.
    const refusal = await eventually(() => amysTray.notices.find((n) => n.kind === 'login-limit'));
    const others = refusal.sessions as Array<{ sessionId: string; hostname: string }>;
    expect(others).toHaveLength(2);
    const denied = await eventually(async () => (await c.store.queryEvents({ type: 'login-limit.denied', limit: 10 })).events[0]);
    expect(denied.data).toMatchObject({ sessionId: '3', user: 'amy.p', limit: 2 });

    // Act: she chooses to sign out the first computer listed.
    const firstListed = others[0]!;
    amysTray.send({ v: 1, type: 'tray.answer', noticeId: refusal.noticeId, action: 'sign-out-other', target: firstListed.sessionId });

    // Assert: that computer's session was ended by the collector's logoff command, and the third computer is granted.
    await eventually(() => (library.signedOut.length + art.signedOut.length === 1 ? true : undefined));
    const grantedHere = await eventually(async () =>
      (await c.store.queryEvents({ type: 'login-limit.granted', limit: 10 })).events.find((e) => (e.data as { sessionId: string }).sessionId === '3'),
    );
    expect(grantedHere).toBeDefined();
    expect(third.signedOut).toEqual([]);
    const remote = await eventually(async () => (await c.store.queryEvents({ type: 'session.logoff', limit: 10 })).events[0]);
    expect(remote.data).toMatchObject({ reason: 'remote', confirmed: true, user: 'amy.p' });

    amysTray.socket.destroy();
    for (const computer of [library, art, third]) await computer.agent.stop('test over');
    await c.close();
  });
});
