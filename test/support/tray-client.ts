import { connect } from 'node:net';
import type { AgentDeps } from '../../agent/agent';
import type { TestCollector } from './harness';

/**
 * A tray on an agent's real socket: says hello (naming `sessionId`, if
 * given), and keeps every status and notice it is sent.
 */
export function trayClient(path: string, sessionId?: string) {
  const statuses: Array<Record<string, unknown>> = [];
  const notices: Array<Record<string, unknown>> = [];
  const hello = { v: 1, type: 'tray.hello', trayVersion: '1', ...(sessionId ? { sessionId } : {}) };
  const socket = connect(path, () => socket.write(`${JSON.stringify(hello)}\n`));
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    buffer += d;
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const l of lines) {
      const m = JSON.parse(l) as Record<string, unknown>;
      if (m.type === 'tray.status') statuses.push(m);
      if (m.type === 'tray.notice') notices.push(m);
    }
  });
  return { socket, statuses, notices, send: (m: unknown) => socket.write(`${JSON.stringify(m)}\n`) };
}

/** The agent's configuration for a test: enrolled with the test collector, its data in `dataDir`. */
export async function agentConfigFor(c: TestCollector, dataDir: string, policy: string): Promise<AgentDeps['config']> {
  return {
    collector: { url: c.agentUrl, enrollmentToken: await c.enrollmentToken(), allowInsecure: false },
    dataDir,
    logLevel: 'error',
    policy,
    outbox: { capBytes: 64 * 1024 * 1024 },
  };
}
