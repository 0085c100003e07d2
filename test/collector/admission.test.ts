import { join } from 'node:path';
import { WebSocket } from 'ws';
import type { RunningAgent } from '../../agent/agent';
import { DEFAULT_AGENT_SOCKET_LIMITS } from '../../collector/agent-socket';
import { createEnrollmentToken } from '../../collector/http-api';
import { proofFor } from '../../node-common/device-proof';
import { eventually, runCli, startCli, tempDir } from '../support/cli';
import { RawClient, type TestCollector, freePort, startTestAgent, startTestCollector } from '../support/harness';

const IDLE = 520;

/** Opens `n` connections from `localAddress` that say nothing; resolves once each has opened or been turned away. */
async function idleSockets(url: string, n: number, localAddress: string): Promise<WebSocket[]> {
  const sockets = Array.from({ length: n }, () => {
    const ws = new WebSocket(url, { perMessageDeflate: false, localAddress });
    ws.on('error', () => undefined);
    return ws;
  });
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          ws.once('open', () => resolve());
          ws.once('close', () => resolve());
        }),
    ),
  );
  return sockets;
}

/** The same, each saying hello for `deviceId` and never answering the challenge. */
async function unprovenHellos(url: string, n: number, deviceId: string): Promise<WebSocket[]> {
  const sockets = await idleSockets(url, n, '127.0.0.1');
  for (const ws of sockets)
    if (ws.readyState === WebSocket.OPEN)
      ws.send(JSON.stringify({ v: 1, type: 'hello', agentVersion: '0.1.0', hostname: 'ROGUE', platform: 'linux', auth: { kind: 'device', deviceId } }));
  return sockets;
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map((ws) => (ws.readyState === WebSocket.CLOSED ? undefined : new Promise<void>((resolve) => (ws.once('close', () => resolve()), ws.terminate())))),
  );
}

/**
 * Idle or unproven connections must not lock agents out (issue 13 item 8):
 * admission by source address, a short window to say hello, and handshake
 * slots kept for connections naming a known device. Real sockets, real agent.
 */
describe('admission: idle connections do not lock agents out', () => {
  let c: TestCollector;
  let dataDir: string;
  let deviceId: string;
  let agent: RawAgent | undefined;
  type RawAgent = RunningAgent & { dataDir: string };

  beforeAll(async () => {
    // The default limits, but a long hello window: here the idle sockets stay, so admission alone must let the agent in.
    c = await startTestCollector({ limits: { helloTimeoutMs: 60_000, authTimeoutMs: 60_000 } });
    dataDir = tempDir('agent');
    const first = await startTestAgent(c.agentUrl, await c.enrollmentToken(), dataDir);
    await eventually(() => (first.link.currentState === 'ready' ? true : undefined));
    deviceId = (await c.store.listDevices())[0]!.id;
    await first.stop('enrolled');
  });
  afterEach(async () => {
    await agent?.stop('test over');
    agent = undefined;
  });
  afterAll(() => c.close());

  /** The real agent, restarted with its identity: connected, authenticated and delivering within a bounded wait. */
  async function agentGetsIn(): Promise<void> {
    agent = await startTestAgent(c.agentUrl, await c.enrollmentToken(), dataDir);
    await eventually(() => (agent!.link.currentState === 'ready' ? true : undefined), 100);
    const reason = `in despite ${IDLE} idle sockets`;
    await agent.record({ type: 'agent.stopped', severity: 'info', time: new Date().toISOString(), data: { reason } });
    await eventually(() => (agent!.outbox.pendingCount === 0 ? true : undefined), 100);
    const stored = await c.store.queryEvents({ device: deviceId, type: 'agent.stopped', limit: 1000 });
    expect(stored.events.map((e) => (e.data as { reason: string }).reason)).toContain(reason);
  }

  it(`${IDLE} idle sockets from another address: a real agent still gets in, and that address holds no more than its share`, async () => {
    const idle = await idleSockets(c.agentUrl, IDLE, '127.0.0.2');
    try {
      const cap = DEFAULT_AGENT_SOCKET_LIMITS.maxHandshakesPerAddress;
      // Those pushed out are told so (busy, 4503); the close frames may still be on their way.
      await eventually(() => (idle.filter((ws) => ws.readyState === WebSocket.OPEN).length <= cap ? true : undefined));
      await agentGetsIn();
    } finally {
      await closeAll(idle);
    }
  });

  it(`${IDLE} idle sockets from the agent's own address (a school behind one NAT address): the agent still gets in`, async () => {
    const idle = await idleSockets(c.agentUrl, IDLE, '127.0.0.1');
    try {
      await agentGetsIn();
    } finally {
      await closeAll(idle);
    }
  });

  it(`${IDLE} hellos naming the agent's own device id that never prove it: the agent still gets in`, async () => {
    const rogue = await unprovenHellos(c.agentUrl, IDLE, deviceId);
    try {
      await agentGetsIn();
    } finally {
      await closeAll(rogue);
    }
  });
});

describe('the window to say hello', () => {
  it('is 3 s by default, and 10 s to finish authenticating', () => {
    expect(DEFAULT_AGENT_SOCKET_LIMITS.helloTimeoutMs).toBe(3_000);
    expect(DEFAULT_AGENT_SOCKET_LIMITS.authTimeoutMs).toBe(10_000);
  });

  it('closes a connection that says nothing with 4408, and gives one that said hello the longer window to prove itself', async () => {
    const c = await startTestCollector({ limits: { helloTimeoutMs: 200, authTimeoutMs: 2_000 } });
    try {
      const enrolling = new RawClient(c.agentUrl);
      await enrolling.opened;
      enrolling.send({
        v: 1,
        type: 'hello',
        agentVersion: '0.1.0',
        hostname: 'A',
        platform: 'linux',
        auth: { kind: 'enroll', token: await c.enrollmentToken(), installationId: 'inst-window' },
      });
      const { deviceId } = await enrolling.next('enrolled');
      enrolling.ws.close();

      const silent = new RawClient(c.agentUrl);
      const slow = new RawClient(c.agentUrl);
      await slow.opened;
      slow.send({ v: 1, type: 'hello', agentVersion: '0.1.0', hostname: 'SLOW', platform: 'linux', auth: { kind: 'device', deviceId } });
      await slow.next('challenge');
      expect((await silent.closed).code).toBe(4408);
      expect(slow.ws.readyState).toBe(WebSocket.OPEN);
      expect((await slow.closed).code).toBe(4408);
      expect(slow.messages().flatMap((m) => (m.type === 'error' ? [m.error.code] : []))).toEqual(['INV_ERR_HELLO_TIMEOUT']);
    } finally {
      await c.close();
    }
  });
});

describe('the per-address cap is configurable (a school behind one NAT address raises it)', () => {
  it('takes --handshakes-per-address: with 2, the third silent connection from one address pushes out the first', async () => {
    const port = await freePort();
    const dir = tempDir('collector');
    const run = startCli(['collector', '--db', `sqlite:${join(dir, 'c.db')}`, '--port', String(port), '--data-dir', dir, '--handshakes-per-address', '2']);
    try {
      await eventually(() => (/listening on/.test(run.output()) ? true : undefined), 400);
      const url = `ws://127.0.0.1:${port}/agent`;
      const first = new RawClient(url);
      await first.opened;
      const rest = [new RawClient(url), new RawClient(url)];
      await Promise.all(rest.map((r) => r.opened));
      expect((await first.closed).code).toBe(4503);
      expect(rest.every((r) => r.ws.readyState === WebSocket.OPEN)).toBe(true);
      for (const r of rest) r.ws.terminate();
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });

  it('names the setting when its value is not a whole number', () => {
    const result = runCli(['collector', '--db', 'sqlite::memory:'], { env: { INVIGILATOR_HANDSHAKES_PER_ADDRESS: 'lots' } });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/INV_ERR_CONFIG_INVALID at \$\.handshakesPerAddress: .*\(from INVIGILATOR_HANDSHAKES_PER_ADDRESS\)/);
  });
});

describe('a device waiting for approval', () => {
  it('is challenged like any known device, closed 4403 INV_ERR_DEVICE_PENDING after its proof, and leaves its handshake slot free', async () => {
    const c = await startTestCollector();
    try {
      const { token } = await createEnrollmentToken(c.store, Date.now(), 'installer', 1);
      const enrolling = new RawClient(c.agentUrl);
      await enrolling.opened;
      enrolling.send({
        v: 1,
        type: 'hello',
        agentVersion: '0.1.0',
        hostname: 'A',
        platform: 'linux',
        auth: { kind: 'enroll', token, installationId: 'inst-pending' },
      });
      const { deviceId, deviceSecret } = await enrolling.next('enrolled');
      expect((await enrolling.closed).code).toBe(4403);

      // Its hello names a known device, so it may use the kept slots; whether it waits is said only after its proof.
      const back = new RawClient(c.agentUrl);
      await back.opened;
      back.send({ v: 1, type: 'hello', agentVersion: '0.1.0', hostname: 'A', platform: 'linux', auth: { kind: 'device', deviceId } });
      const { nonce } = await back.next('challenge');
      back.send({ v: 1, type: 'auth.proof', deviceId, nonce, proof: proofFor(Buffer.from(deviceSecret, 'base64url'), nonce, deviceId) });
      expect(await back.closed).toEqual({ code: 4403, reason: 'INV_ERR_DEVICE_PENDING' });
      expect(back.messages().map((m) => m.type)).toEqual(['busy', 'error']);
      // The server's side of the close completes a moment after the client's.
      await eventually(() => (c.collector.agents.admission.inProgress === 0 ? true : undefined), 100);
    } finally {
      await c.close();
    }
  });
});
