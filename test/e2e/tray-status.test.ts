import { join } from 'node:path';
import { startAgent } from '../../agent/agent';
import { preset } from '../../shared/policy/presets';
import { eventually, tempDir } from '../support/cli';
import { silentLogger, startTestCollector } from '../support/harness';
import { agentConfigFor, trayClient } from '../support/tray-client';

/** A tray on the agent's real socket, and a wait for the status it is sent to say something. */
function trayOn(path: string) {
  const tray = trayClient(path);
  const until = async (check: (s: Record<string, unknown>) => boolean) => {
    for (let i = 0; i < 1000; i++) {
      const last = tray.statuses[tray.statuses.length - 1];
      if (last && check(last)) return last;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no such status; last: ${JSON.stringify(tray.statuses[tray.statuses.length - 1])}`);
  };
  return { ...tray, until };
}

describe('the status the agent gives the tray', () => {
  it('says protected with the policy once connected, and not connected when the collector goes', async () => {
    const c = await startTestCollector({ policy: preset('basildon-primary')! });
    const dataDir = tempDir('tray-status');
    const agent = await startAgent({
      config: await agentConfigFor(c, dataDir, 'basildon-primary'),
      fallbackPolicy: preset('basildon-primary')!,
      logger: silentLogger(),
      platform: 'linux',
      version: '0.0.0-test',
      linkTuning: { backoffBaseMs: 50, backoffCapMs: 200 },
      trayPath: join(dataDir, 'tray.sock'),
    });
    const tray = trayOn(join(dataDir, 'tray.sock'));
    const connected = await tray.until((s) => s.state === 'protected');
    expect(connected).toMatchObject({ policyName: preset('basildon-primary')!.name, policyRevision: 1 });
    expect(typeof connected.connectedSince).toBe('string');
    await tray.until((s) => (s.lastEvent as { type?: string } | null)?.type === 'agent.started');

    await c.close();
    const down = await tray.until((s) => s.state === 'disconnected');
    expect(down.connectedSince).toBeNull();
    tray.socket.destroy();
    await agent.stop('test over');
  });
  it("records a problem report with the computer's details and its recent warnings, and puts up the virus warning", async () => {
    const c = await startTestCollector({ policy: preset('basildon-primary')! });
    const dataDir = tempDir('tray-report');
    const agent = await startAgent({
      config: await agentConfigFor(c, dataDir, 'basildon-primary'),
      fallbackPolicy: preset('basildon-primary')!,
      logger: silentLogger(),
      platform: 'linux',
      version: '0.0.0-test',
      trayPath: join(dataDir, 'tray.sock'),
    });
    const tray = trayOn(join(dataDir, 'tray.sock'));
    await tray.until((s) => s.state === 'protected');
    tray.send({ v: 1, type: 'tray.report', kind: 'virus', text: 'A window says my files are locked' });

    const reported = await eventually(async () => (await c.store.queryEvents({ type: 'problem.reported', limit: 10 })).events[0]);
    expect(reported).toMatchObject({ severity: 'alert', data: { kind: 'virus', text: 'A window says my files are locked' } });
    const details = (reported.data as { systemDetails: string }).systemDetails;
    expect(details).toMatch(/^computer: /);
    expect(details).toContain('policy: basildon-primary revision 1');
    expect(details).toContain('recent warnings and errors:');
    await eventually(() => (tray.notices.some((n) => n.kind === 'virus-warning') ? true : undefined));
    expect(tray.notices.find((n) => n.kind === 'virus-warning')).toMatchObject({ clause: { id: 'bps-malware' } });
    tray.socket.destroy();
    await agent.stop('test over');
    await c.close();
  });

  it('takes a flood of 1,000 virus reports from one tray as a few, tells that tray so in plain words, and warns the other tray once', async () => {
    // Arrange: the agent, and two trays on its socket: the one that floods, and someone else's
    const c = await startTestCollector({ policy: preset('basildon-primary')! });
    const dataDir = tempDir('tray-flood');
    const agent = await startAgent({
      config: await agentConfigFor(c, dataDir, 'basildon-primary'),
      fallbackPolicy: preset('basildon-primary')!,
      logger: silentLogger(),
      platform: 'linux',
      version: '0.0.0-test',
      trayPath: join(dataDir, 'tray.sock'),
    });
    const other = trayOn(join(dataDir, 'tray.sock'));
    const flooder = trayOn(join(dataDir, 'tray.sock'));
    await other.until((s) => s.state === 'protected');
    await flooder.until((s) => s.state === 'protected');
    let received = '';
    flooder.socket.on('data', (d: Buffer | string) => (received += String(d)));
    const count = (pattern: RegExp) => received.match(pattern)?.length ?? 0;

    // Act
    flooder.socket.write(
      Array.from(
        { length: 1000 },
        (_, i) => `${JSON.stringify({ v: 1, type: 'tray.report', kind: 'virus', text: `virus ${i}`, reportId: `flood-${i}` })}\n`,
      ).join(''),
    );

    // Assert: every report acknowledged; a handful recorded; one warning on the other tray; one refusal on the flooder's
    await eventually(() => (count(/"type":"tray\.report\.ack"/g) === 1000 ? true : undefined));
    const recorded = count(/"outcome":"recorded"/g);
    expect(recorded).toBeGreaterThanOrEqual(5);
    expect(recorded).toBeLessThanOrEqual(6);
    await eventually(() => (agent.outbox.pendingCount === 0 ? true : undefined));
    expect((await c.store.queryEvents({ type: 'problem.reported', limit: 100 })).events).toHaveLength(recorded);
    expect(other.notices.filter((n) => n.kind === 'virus-warning')).toHaveLength(1);
    expect(flooder.notices.filter((n) => n.kind === 'information')).toEqual([expect.objectContaining({ title: 'Thank you: that is enough for now' })]);
    other.socket.destroy();
    flooder.socket.destroy();
    await agent.stop('test over');
    await c.close();
  });
});
