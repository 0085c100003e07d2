import { WebSocket, WebSocketServer } from 'ws';
import type { EventDraft } from '../../agent/core/events';
import { eventually } from '../support/cli';
import { allEvents } from '../support/delivery-checks';
import { type TestCollector, startTestAgent, startTestCollector } from '../support/harness';

/** A virus report about 5 KB long, as a tray sends it: 4,096 characters of text and the agent's system details. */
const bigReport = (k: number): EventDraft => ({
  type: 'problem.reported',
  severity: 'alert',
  time: new Date().toISOString(),
  data: { kind: 'virus', text: `${k} `.padEnd(4096, 'x'), systemDetails: 'computer: CLASS3-01 (linux 6.8)\n'.repeat(36) },
});

const closes = (c: TestCollector, code: number) => c.collector.metrics.value('invigilator_agent_closes_total', { code });

const running: Array<{ stop(reason: string): Promise<void> }> = [];
async function agentFor(c: TestCollector) {
  const agent = await startTestAgent(c.agentUrl, await c.enrollmentToken());
  running.push(agent);
  return agent;
}

async function storedEvents(c: TestCollector) {
  const [device] = await c.store.listDevices();
  return allEvents(c.store, device!.id);
}

/** Seqs 1..n each stored once, nothing stored twice. */
function expectOnce(events: Array<Record<string, unknown>>, n: number): void {
  expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  const seqs = events.map((e) => e.seq as number).filter((s) => s <= n);
  expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
}

/**
 * A WebSocket relay in front of the collector that takes smaller frames than
 * the collector says in `welcome`, as a proxy with a limit of its own does: a
 * frame over its limit is closed 1009 by the relay itself. Real sockets on
 * loopback both sides; frames pass through unchanged.
 */
class SmallFrameRelay {
  readonly server: WebSocketServer;
  /** Frames the relay refused for their size. */
  refusedForSize = 0;

  constructor(
    private readonly upstream: string,
    maxFrameBytes: number,
  ) {
    this.server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: maxFrameBytes });
    this.server.on('connection', (down) => this.relay(down));
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as { port: number }).port}/agent`;
  }

  async listening(): Promise<void> {
    if (!this.server.address()) await new Promise<void>((resolve) => this.server.once('listening', () => resolve()));
  }

  private relay(down: WebSocket): void {
    const up = new WebSocket(this.upstream, { perMessageDeflate: false });
    const early: Array<{ data: Buffer; binary: boolean }> = [];
    up.on('open', () => {
      for (const f of early.splice(0)) up.send(f.data, { binary: f.binary });
    });
    down.on('message', (data: Buffer, binary) => (up.readyState === WebSocket.OPEN ? up.send(data, { binary }) : early.push({ data, binary })));
    up.on('message', (data: Buffer, binary) => down.readyState === WebSocket.OPEN && down.send(data, { binary }));
    down.on('error', (e: Error & { code?: string }) => {
      if (e.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.refusedForSize++;
    });
    up.on('error', () => down.terminate());
    down.on('close', () => up.close());
    // The collector's own close codes pass through; a close without one (1005, 1006) is "going away".
    up.on('close', (code, reason) => down.close(code === 1000 || code >= 3000 ? code : 1001, reason));
  }

  close(): Promise<void> {
    for (const ws of this.server.clients) ws.terminate();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('the size of what the link sends', () => {
  let c: TestCollector | undefined;
  const relays: SmallFrameRelay[] = [];
  afterEach(async () => {
    for (const a of running.splice(0)) await a.stop('test').catch(() => undefined);
    for (const r of relays.splice(0)) await r.close();
    await c?.close();
    c = undefined;
  });

  it('delivers 1,000 reports of 5 KB each whole and once, never sending a frame over the collector’s limit', async () => {
    c = await startTestCollector();
    const agent = await agentFor(c);
    await eventually(() => (agent.link.currentState === 'ready' ? true : undefined));
    await Promise.all(Array.from({ length: 1000 }, (_, i) => agent.record(bigReport(i + 1))));
    await eventually(() => (agent.outbox.pendingCount === 0 ? true : undefined), 600, 50);
    expect(closes(c, 1009)).toBe(0);
    const events = await storedEvents(c);
    expectOnce(events, 1001);
    expect(events.filter((e) => e.type === 'problem.reported')).toHaveLength(1000);
  });

  it('splits its batches when a frame is refused for its size, instead of sending the same frame again', async () => {
    // The collector says 1 MiB frames in welcome; a proxy in front of it takes 64 KiB, and says nothing.
    c = await startTestCollector();
    const relay = new SmallFrameRelay(c.agentUrl, 64 * 1024);
    relays.push(relay);
    await relay.listening();
    const agent = await startTestAgent(relay.url, await c.enrollmentToken());
    running.push(agent);
    await Promise.all(Array.from({ length: 300 }, (_, i) => agent.record(bigReport(i + 1))));
    await eventually(() => (agent.outbox.pendingCount === 0 ? true : undefined), 600, 50);
    // Each refusal halves what the agent sends: from 3/4 of 1 MiB down to 64 KiB takes a handful, not hundreds.
    expect(relay.refusedForSize).toBeGreaterThan(0);
    expect(relay.refusedForSize).toBeLessThanOrEqual(5);
    expectOnce(await storedEvents(c), 301);
  });

  it('sends an event too big for any frame the collector takes as a stand-in under the same number, and goes on', async () => {
    c = await startTestCollector({ limits: { maxPayloadBytes: 4 * 1024 } });
    const agent = await agentFor(c);
    await agent.record({ type: 'command.completed', severity: 'info', time: new Date().toISOString(), data: { commandId: 'before', ok: true } });
    await agent.record(bigReport(1));
    await agent.record({ type: 'command.completed', severity: 'info', time: new Date().toISOString(), data: { commandId: 'after', ok: true } });
    await eventually(() => (agent.outbox.pendingCount === 0 ? true : undefined), 600, 50);
    const events = await storedEvents(c);
    expectOnce(events, 4);
    const standIn = events.find((e) => e.seq === 3)!;
    expect(standIn).toMatchObject({ type: 'outbox.too-large', severity: 'alert', data: { eventType: 'problem.reported' } });
    expect((standIn.data as { bytes: number }).bytes).toBeGreaterThan(4 * 1024);
    expect(events.find((e) => e.seq === 4)).toMatchObject({ type: 'command.completed', data: { commandId: 'after' } });
  });

  it('records an event bigger than the outbox keeps as a stand-in that says what it was, and the caller carries on', async () => {
    c = await startTestCollector();
    const agent = await agentFor(c);
    // The refused pupil is shown every computer holding their place: 1,000 of them, each with a long name, pass 256 KiB.
    const other = (i: number) => ({ hostname: `host-${i}`.padEnd(256, 'h'), since: '2026-11-23T09:00:00.000Z' });
    const huge: EventDraft = {
      type: 'login-limit.denied',
      severity: 'warning',
      time: '2026-11-23T09:00:00.000Z',
      user: { name: 'amy.p', role: 'pupil' },
      data: { sessionId: 's-1', user: 'amy.p', limit: 1, others: Array.from({ length: 1000 }, (_, i) => other(i)) },
    };
    await expect(agent.record(huge)).resolves.toBeUndefined();
    await agent.record({ type: 'command.completed', severity: 'info', time: new Date().toISOString(), data: { commandId: 'after', ok: true } });
    await eventually(() => (agent.outbox.pendingCount === 0 ? true : undefined), 600, 50);
    const events = await storedEvents(c);
    expectOnce(events, 3);
    expect(events.find((e) => e.seq === 2)).toMatchObject({
      type: 'outbox.too-large',
      severity: 'warning',
      time: '2026-11-23T09:00:00.000Z',
      user: { name: 'amy.p', role: 'pupil' },
      data: { eventType: 'login-limit.denied' },
    });
  });
});
