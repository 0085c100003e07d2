import { WebSocketServer, type WebSocket } from 'ws';
import type { EventDraft } from '../../agent/core/events';
import { TokenBucket } from '../../collector/rate-limiter';
import { type AgentToCollector, type ConnectionLimits, PROTOCOL_VERSION, decodeAgentToCollector, encode } from '../../shared/protocol';
import { eventually } from '../support/cli';
import { allEvents } from '../support/delivery-checks';
import { type TestCollector, startTestAgent, startTestCollector } from '../support/harness';

const report = (k: number): EventDraft => ({
  type: 'problem.reported',
  severity: 'notice',
  time: new Date().toISOString(),
  data: { kind: 'broken', text: `report ${k}` },
});

/**
 * Seqs 1..n stored exactly once, and nothing stored twice. (`agent.stopped`,
 * recorded as the agent stops, may still be in the outbox for next time.)
 */
async function storedOnce(c: TestCollector, n: number): Promise<void> {
  const [device] = await c.store.listDevices();
  const events = await allEvents(c.store, device!.id);
  expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  const seqs = events.map((e) => e.seq as number).filter((s) => s <= n);
  expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
}

const closes = (c: TestCollector, code: number) => c.collector.metrics.value('invigilator_agent_closes_total', { code });

/** Agents a test started, stopped after it whatever happened (a failed wait must not leave one running). */
const running: Array<{ stop(reason: string): Promise<void> }> = [];
async function agentFor(url: string, token: string) {
  const agent = await startTestAgent(url, token);
  running.push(agent);
  return agent;
}
describe('the link paces itself under the collector', () => {
  let c: TestCollector;
  beforeEach(async () => {
    c = await startTestCollector();
  });
  afterEach(async () => {
    for (const a of running.splice(0)) await a.stop('test').catch(() => undefined);
    await c.close();
  });

  it('sends a 5,000-event burst without once being closed for its rate, and every event is stored once', async () => {
    const agent = await agentFor(c.agentUrl, await c.enrollmentToken());
    await eventually(() => (agent.link.currentState === 'ready' ? true : undefined));
    // The tray's reports arrive one after another, each recorded before the next, as the tray channel handles them.
    for (let k = 1; k <= 5000; k++) await agent.record(report(k));
    await eventually(() => (agent.outbox.pendingCount === 0 ? true : undefined), 600, 50);
    await agent.stop('test');
    expect(closes(c, 4429)).toBe(0);
    // agent.started and 5,000 reports.
    await storedOnce(c, 5001);
  });

  it('counts permission requests against the same budget as batches', async () => {
    const agent = await agentFor(c.agentUrl, await c.enrollmentToken());
    await eventually(() => (agent.link.currentState === 'ready' ? true : undefined));
    const sent: boolean[] = [];
    const recording: Array<Promise<void>> = [];
    for (let k = 1; k <= 400; k++) {
      sent.push(
        agent.link.sendPermissionRequest({
          v: PROTOCOL_VERSION,
          type: 'permission.request',
          requestId: `req-${k}`,
          kind: 'other',
          subject: { label: `thing ${k}` },
          user: { name: 'amy.p', role: 'pupil' },
          reason: 'for my project',
        }),
      );
      recording.push(agent.record(report(k)));
    }
    await Promise.all(recording);
    expect(sent.every(Boolean)).toBe(true);
    await eventually(async () => ((await c.store.listPermissionRequests({ limit: 1000 })).requests.length === 400 ? true : undefined), 600, 50);
    await eventually(() => (agent.outbox.pendingCount === 0 ? true : undefined), 600, 50);
    await agent.stop('test');
    expect(closes(c, 4429)).toBe(0);
  });
});

describe('the link under the real collector configured with tight limits', () => {
  let c: TestCollector | undefined;
  afterEach(async () => {
    for (const a of running.splice(0)) await a.stop('test').catch(() => undefined);
    await c?.close();
    c = undefined;
  });

  it('keeps to the limits its welcome says: never closed for rate, size or batch length, and every event stored once', async () => {
    // Far below the defaults the link assumes before welcome (50 a second, bursts of 200): only what welcome says keeps it under.
    c = await startTestCollector({ limits: { messagesPerSecond: 8, messageBurst: 12, maxPayloadBytes: 16 * 1024, maxEventsPerBatch: 30 } });
    const agent = await agentFor(c.agentUrl, await c.enrollmentToken());
    await eventually(() => (agent.link.currentState === 'ready' ? true : undefined));
    const sent: boolean[] = [];
    for (let k = 1; k <= 400; k++) {
      await agent.record(report(k));
      // Permission requests share the one budget with the batches.
      if (k % 20 === 0)
        sent.push(
          agent.link.sendPermissionRequest({
            v: PROTOCOL_VERSION,
            type: 'permission.request',
            requestId: `req-${k}`,
            kind: 'other',
            subject: { label: `thing ${k}` },
            user: { name: 'amy.p', role: 'pupil' },
            reason: 'for my project',
          }),
        );
    }
    const collector = c;
    const limitCloses = () => [4429, 1009, 4400].map((code) => ({ code, closes: closes(collector, code) }));
    // Done, or closed for breaking a limit (what a link that ignores welcome's limits gets at once).
    await eventually(() => (agent.outbox.pendingCount === 0 || limitCloses().some((l) => l.closes > 0) ? true : undefined), 600, 50);
    expect(limitCloses()).toEqual([4429, 1009, 4400].map((code) => ({ code, closes: 0 })));
    expect(sent).toEqual(Array.from({ length: 20 }, () => true));
    await eventually(async () => ((await collector.store.listPermissionRequests({ limit: 100 })).requests.length === 20 ? true : undefined), 600, 50);
    await agent.stop('test');
    expect(limitCloses()).toEqual([4429, 1009, 4400].map((code) => ({ code, closes: 0 })));
    // agent.started and 400 reports.
    await storedOnce(c, 401);
  });
});

/**
 * A collector that advertises tight limits in `welcome` and holds the agent to
 * them with the collector's own token bucket: real sockets on loopback, the
 * agent's real link and outbox; only the collector's storage is left out.
 */
class StrictCollector {
  readonly server: WebSocketServer;
  readonly frames: Array<{ type: string; bytes: number; events: number }> = [];
  readonly refused: string[] = [];
  readonly stored = new Map<number, string>();

  constructor(readonly limits: ConnectionLimits) {
    this.server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: limits.maxFrameBytes });
    this.server.on('connection', (ws) => this.serve(ws));
  }

  get url(): string {
    const address = this.server.address() as { port: number };
    return `ws://127.0.0.1:${address.port}/agent`;
  }

  private serve(ws: WebSocket): void {
    const bucket = new TokenBucket(this.limits.messagesPerSecond, this.limits.messageBurst, Date.now);
    ws.on('error', (e) => this.refused.push(e.message));
    ws.on('message', (data) => {
      const bytes = data as Buffer;
      if (!bucket.take()) {
        this.refused.push('rate');
        ws.close(4429, 'INV_ERR_RATE_LIMITED');
        return;
      }
      const decoded = decodeAgentToCollector(bytes, { maxBytes: this.limits.maxFrameBytes, maxDepth: 32 });
      if (!decoded.ok) {
        this.refused.push(decoded.problems[0]!.code);
        ws.close(4400, decoded.problems[0]!.code);
        return;
      }
      const m: AgentToCollector = decoded.value;
      this.frames.push({ type: m.type, bytes: bytes.length, events: m.type === 'event.batch' ? m.events.length : 0 });
      const send = (out: Parameters<typeof encode>[0]) => ws.send(encode(out));
      if (m.type === 'hello') {
        if (m.auth.kind === 'enroll') send({ v: PROTOCOL_VERSION, type: 'enrolled', deviceId: 'dev-strict', deviceSecret: 'c2VjcmV0c2VjcmV0c2VjcmV0' });
        send({ v: PROTOCOL_VERSION, type: 'welcome', deviceId: 'dev-strict', serverTime: new Date().toISOString(), lastAckedSeq: 0, limits: this.limits });
      } else if (m.type === 'event.batch') {
        for (const e of m.events) this.stored.set(e.seq, e.id);
        send({ v: PROTOCOL_VERSION, type: 'ack', upToSeq: m.events.at(-1)!.seq });
      }
    });
  }

  async listening(): Promise<void> {
    if (this.server.address()) return;
    await new Promise<void>((resolve) => this.server.once('listening', () => resolve()));
  }

  close(): Promise<void> {
    for (const ws of this.server.clients) ws.terminate();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('the link and the limits a collector advertises', () => {
  const strictServers: StrictCollector[] = [];
  afterEach(async () => {
    for (const a of running.splice(0)) await a.stop('test').catch(() => undefined);
    for (const s of strictServers.splice(0)) await s.close();
  });

  it('keeps to the advertised rate, frame size and batch length', async () => {
    const limits = { messagesPerSecond: 8, messageBurst: 12, maxFrameBytes: 16 * 1024, maxEventsPerBatch: 30 };
    const strict = new StrictCollector(limits);
    strictServers.push(strict);
    await strict.listening();
    const agent = await agentFor(strict.url, 'inv_enroll_strict');
    for (let k = 1; k <= 400; k++) await agent.record(report(k));
    await eventually(() => (agent.outbox.pendingCount === 0 ? true : undefined), 600, 50);
    await agent.stop('test');
    expect(strict.refused).toEqual([]);
    const batches = strict.frames.filter((f) => f.type === 'event.batch');
    expect(Math.max(...batches.map((b) => b.bytes))).toBeLessThanOrEqual(limits.maxFrameBytes);
    expect(Math.max(...batches.map((b) => b.events))).toBeLessThanOrEqual(limits.maxEventsPerBatch);
    // agent.started and 400 reports: every one stored, none missing.
    expect([...strict.stored.keys()].filter((s) => s <= 401).sort((a, b) => a - b)).toEqual(Array.from({ length: 401 }, (_, i) => i + 1));
  });
});
