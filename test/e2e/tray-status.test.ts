import { connect } from 'node:net';
import { join } from 'node:path';
import { startAgent } from '../../agent/agent';
import { preset } from '../../shared/policy/presets';
import { tempDir } from '../support/cli';
import { silentLogger, startTestCollector } from '../support/harness';

/** A tray on the agent's real socket, keeping the last status it was sent. */
function trayOn(path: string) {
  const statuses: Array<Record<string, unknown>> = [];
  const socket = connect(path, () => socket.write(`${JSON.stringify({ v: 1, type: 'tray.hello', trayVersion: '1' })}\n`));
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    buffer += d;
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const l of lines) {
      const m = JSON.parse(l) as Record<string, unknown>;
      if (m.type === 'tray.status') statuses.push(m);
    }
  });
  const until = async (check: (s: Record<string, unknown>) => boolean) => {
    for (let i = 0; i < 1000; i++) {
      const last = statuses[statuses.length - 1];
      if (last && check(last)) return last;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no such status; last: ${JSON.stringify(statuses[statuses.length - 1])}`);
  };
  return { socket, until };
}

describe('the status the agent gives the tray', () => {
  it('says protected with the policy once connected, and not connected when the collector goes', async () => {
    const c = await startTestCollector({ policy: preset('basildon-primary')! });
    const dataDir = tempDir('tray-status');
    const agent = await startAgent({
      config: {
        collector: { url: c.agentUrl, enrollmentToken: await c.enrollmentToken(), allowInsecure: false },
        dataDir,
        logLevel: 'error',
        policy: 'basildon-primary',
        outbox: { capBytes: 256 * 1024 * 1024 },
      },
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
});
