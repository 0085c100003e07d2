import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import type { CollectorToAgent, Command, EventEnvelope, Platform } from '../../shared/protocol';
import { decodeCollectorToAgent, encode } from '../../shared/protocol/agent-codec';
import { PROTOCOL_VERSION } from '../../shared/protocol/primitives';
import type { Policy } from '../../shared/policy/schema';
import { proofFor } from '../../node-common/device-proof';
import type { Logger } from '../../node-common/logging';
import type { IdentityFile } from '../identity';
import type { StoredEvent } from '../core/events';
import type { Outbox } from '../outbox/outbox';
import { tooLargeStandIn } from '../outbox/too-large';
import { backoffDelay } from '../core/backoff';
import { checkCollectorUrl } from './collector-url';
import { ASSUMED_COLLECTOR_LIMITS, MIN_FRAME_BUDGET_BYTES, Pacer, paceFor } from './pacer';

export interface LinkOptions {
  url: string;
  allowInsecure: boolean;
  /** A CA bundle to trust for the collector's certificate (a school's own CA). */
  caFile?: string;
  enrollmentToken?: string;
  identity: IdentityFile;
  outbox: Outbox;
  logger: Logger;
  agentVersion: string;
  hostname: string;
  platform: Platform;
  policyRevision: () => number | undefined;
  policyId?: () => string | undefined;
  onPolicy: (policy: Policy) => void;
  onCommand: (commandId: string, command: Command) => void;
  /** The network manager answered a permission request. May arrive more than once: handle by request id. */
  onPermissionDecision?: (decision: Extract<CollectorToAgent, { type: 'permission.decision' }>) => void;
  /** The collector's answer to a login claim. */
  onLoginVerdict?: (verdict: Extract<CollectorToAgent, { type: 'login.verdict' }>) => void;
  /** The collector enrolled this device and its identity is saved: the enrollment token is no longer needed. */
  onEnrolled?: (deviceId: string) => void;
  /** Authenticated and ready: anything kept while the link was down can be sent now. */
  onReady?: () => void;
  /** The connection went away (the tray shows "not connected to the school"). */
  onDown?: () => void;
  /** Most events in one batch (the collector's `maxEventsPerBatch` may lower it). */
  batchSize: number;
  /** A batch that is not full waits this long after its first event for more to join it. */
  batchLingerMs: number;
  /** Batches sent and not yet acknowledged, at most. */
  window: number;
  heartbeatMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  random?: () => number;
  /** Milliseconds since the epoch, for pacing; injected so tests control time. */
  now?: () => number;
}

export const DEFAULT_LINK_TUNING = { batchSize: 500, batchLingerMs: 50, window: 4, heartbeatMs: 30_000, backoffBaseMs: 1_000, backoffCapMs: 5 * 60_000 };

/** Messages waiting for the rate budget, at most; past it a send says "not now" (false), as when the link is down. */
const MAX_QUEUED_MESSAGES = 1000;
/** After this long without the collector's answer to our close frame, the socket is cut: stopping is bounded. */
const STOP_CLOSE_MS = 1000;

export type LinkState = 'idle' | 'connecting' | 'authenticating' | 'ready' | 'waiting' | 'stopped';

/**
 * The agent's one connection to the collector. It sends what the outbox holds,
 * in order, and lets the outbox forget only what the collector acknowledged.
 * After any failure it waits (full jitter, or what a busy collector asked for)
 * and starts again from the last acknowledgement.
 *
 * It keeps under the collector's limits (those `welcome` gives, or the
 * collector's defaults): every message it sends takes a token from one
 * bucket; batches are filled (up to the count and byte limits, or for a short
 * linger after their first event) rather than sent per event; a batch frame
 * stays under the frame limit, and a frame the collector refused for its size
 * (1009) makes every later frame at most half as large, so it is split, never
 * sent whole again.
 */
export class Link {
  private ws: WebSocket | undefined;
  private state: LinkState = 'idle';
  private attempt = 0;
  private deviceId: string | undefined;
  private sentUpTo = 0;
  private inFlight = 0;
  /** Increases with every welcome: work begun for an earlier connection must not act on a later one. */
  private epoch = 0;
  private pumping = false;
  private retryAfterMs: number | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private awaitingPong = false;
  /** Collector messages are handled one after another: `welcome` must not overtake the saving of `enrolled`. */
  private inbox: Promise<void> = Promise.resolve();
  /** This connection's rate budget; made when the socket opens, retuned by `welcome`. */
  private pacer: Pacer | undefined;
  private pace = paceFor(ASSUMED_COLLECTOR_LIMITS, 1);
  /** Lowered by each frame the collector refused for its size; kept across reconnects. */
  private frameCap = Number.MAX_SAFE_INTEGER;
  /** The largest batch frame sent on this connection: what a 1009 refers to. */
  private largestFrame = 0;
  /** Messages other than batches waiting for a token, already encoded; they go before any batch. */
  private queued: string[] = [];
  private pumpTimer: NodeJS.Timeout | undefined;
  private pumpDue = 0;
  /** When the pump first saw a batch that was not full: it waits `batchLingerMs` from then for more. */
  private lingerSince: number | undefined;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly now: () => number;
  connectedSince: Date | undefined;

  constructor(private readonly options: LinkOptions) {
    checkCollectorUrl(options.url, options.allowInsecure);
    this.log = options.logger.child({ component: 'link' });
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.pace = paceFor(ASSUMED_COLLECTOR_LIMITS, options.batchSize);
  }

  get currentState(): LinkState {
    return this.state;
  }

  start(): void {
    if (this.state !== 'idle') return;
    void this.connect();
  }

  /** New events are in the outbox: send them if the link is up. */
  notify(): void {
    if (this.state === 'ready') void this.pump();
  }

  /**
   * Stops for good, in bounded time: no timer, socket or read of the outbox
   * is left to keep the process alive, and nothing is logged afterwards (the
   * logger may be closed next). Events not yet acknowledged stay in the outbox.
   */
  async stop(): Promise<void> {
    this.state = 'stopped';
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.pumpTimer);
    this.pumpTimer = undefined;
    clearInterval(this.heartbeat);
    this.queued = [];
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const done = setTimeout(() => (ws.terminate(), resolve()), STOP_CLOSE_MS);
      ws.once('close', () => (clearTimeout(done), resolve()));
      ws.close(1000, 'agent stopping');
    });
  }

  private get stopped(): boolean {
    return this.state === 'stopped';
  }

  private async connect(): Promise<void> {
    try {
      await this.open();
    } catch (e) {
      if (this.stopped) return;
      this.log.error('could not connect to the collector', { error: String(e) });
      this.scheduleReconnect();
    }
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    this.state = 'connecting';
    const identity = await this.options.identity.load().catch((e: unknown) => {
      if (!this.stopped) this.log.error('identity file unreadable', { error: String(e) });
      return undefined;
    });
    // stop() may have come while the identity was read: it found no socket to close, so none may be opened now.
    if (this.stopped) return;
    if (!identity && !this.options.enrollmentToken) {
      this.log.error('not enrolled and no enrollment token configured; set collector.enrollmentToken');
      return this.scheduleReconnect();
    }
    const installationId = identity ? undefined : await this.options.identity.installationId();
    if (this.stopped) return;
    const ca = this.options.caFile ? readFileSync(this.options.caFile) : undefined;
    const ws = new WebSocket(this.options.url, { maxPayload: 8 * 1024 * 1024, perMessageDeflate: false, handshakeTimeout: 15_000, ...(ca ? { ca } : {}) });
    this.ws = ws;
    ws.on('open', () => {
      if (this.stopped) return;
      this.state = 'authenticating';
      this.pace = paceFor(ASSUMED_COLLECTOR_LIMITS, this.options.batchSize);
      this.pacer = new Pacer(this.pace.rate, this.pace.burst, this.now);
      this.largestFrame = 0;
      this.startHeartbeat(ws);
      const policyRevision = this.options.policyRevision();
      const policyId = this.options.policyId?.();
      this.sendPaced({
        v: PROTOCOL_VERSION,
        type: 'hello',
        agentVersion: this.options.agentVersion,
        hostname: this.options.hostname.slice(0, 256),
        platform: this.options.platform,
        ...(policyRevision === undefined ? {} : { policyRevision }),
        ...(policyId === undefined ? {} : { policyId }),
        auth: identity
          ? { kind: 'device', deviceId: identity.deviceId }
          : { kind: 'enroll', token: this.options.enrollmentToken!, installationId: installationId! },
      });
    });
    ws.on('message', (data) => {
      if (this.stopped) return;
      const decoded = decodeCollectorToAgent(Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), { maxBytes: 8 * 1024 * 1024, maxDepth: 32 });
      if (!decoded.ok) {
        this.log.warn('collector sent a message that is not valid', { problems: decoded.problems.slice(0, 3) });
        return;
      }
      this.inbox = this.inbox
        .then(() => (this.stopped ? undefined : this.onMessage(decoded.value)))
        .catch((e: unknown) => {
          if (this.stopped) return;
          this.log.error('failed to handle a collector message', { type: decoded.value.type, error: String(e) });
          ws.terminate();
        });
    });
    ws.on('pong', () => (this.awaitingPong = false));
    ws.on('error', (e) => {
      if (!this.stopped) this.log.warn('collector connection error', { error: e.message });
    });
    ws.on('close', (code, reason) => {
      clearInterval(this.heartbeat);
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.connectedSince = undefined;
      this.pacer = undefined;
      this.queued = [];
      clearTimeout(this.pumpTimer);
      this.pumpTimer = undefined;
      this.lingerSince = undefined;
      if (this.stopped) return;
      if (code === 1009 && this.largestFrame > 0) {
        // The collector takes less than we thought: every frame from now on is at most half the one it refused.
        this.frameCap = Math.max(MIN_FRAME_BUDGET_BYTES, Math.floor(this.largestFrame / 2));
        this.log.warn('the collector refused a frame for its size; sending smaller batches', { refusedBytes: this.largestFrame, nowAtMost: this.frameCap });
      }
      this.options.onDown?.();
      this.log.info('collector connection closed', { code, reason: reason.toString().slice(0, 100) });
      this.scheduleReconnect();
    });
  }

  private async onMessage(message: CollectorToAgent): Promise<void> {
    switch (message.type) {
      case 'enrolled':
        await this.options.identity.save({ deviceId: message.deviceId, deviceSecret: message.deviceSecret, collectorUrl: this.options.url });
        this.log.info('enrolled with the collector', { deviceId: message.deviceId });
        this.options.onEnrolled?.(message.deviceId);
        return;
      case 'challenge': {
        const identity = await this.options.identity.load();
        if (!identity) return;
        const secret = Buffer.from(identity.deviceSecret, 'base64url');
        this.sendPaced({
          v: PROTOCOL_VERSION,
          type: 'auth.proof',
          deviceId: identity.deviceId,
          nonce: message.nonce,
          proof: proofFor(secret, message.nonce, identity.deviceId),
        });
        return;
      }
      case 'welcome':
        this.deviceId = message.deviceId;
        this.state = 'ready';
        this.pace = paceFor(message.limits ?? ASSUMED_COLLECTOR_LIMITS, this.options.batchSize);
        this.pacer?.retune(this.pace.rate, this.pace.burst);
        this.attempt = 0;
        this.connectedSince = new Date();
        // A fresh outbox on a known device numbered from 1 again: move its events past what the collector holds.
        if (this.options.outbox.fresh) await this.options.outbox.renumberAfter(message.lastAckedSeq);
        // An ack lost in a crash: the collector already holds these.
        if (message.lastAckedSeq > this.options.outbox.lastAckedSeq) await this.options.outbox.ack(message.lastAckedSeq);
        this.sentUpTo = this.options.outbox.lastAckedSeq;
        this.inFlight = 0;
        this.epoch++;
        this.log.info('connected to the collector', {
          deviceId: message.deviceId,
          pending: this.options.outbox.pendingCount,
          ...(message.limits ? { limits: message.limits } : {}),
        });
        this.options.onReady?.();
        return this.pump();
      case 'ack':
        this.inFlight = Math.max(0, this.inFlight - 1);
        await this.options.outbox.ack(message.upToSeq);
        return this.pump();
      case 'busy':
        this.retryAfterMs = message.retryAfterMs;
        this.log.info('collector is busy', { retryAfterMs: message.retryAfterMs });
        return;
      case 'policy.push':
        this.options.onPolicy(message.policy);
        return;
      case 'command':
        this.options.onCommand(message.commandId, message.command);
        return;
      case 'permission.decision':
        this.options.onPermissionDecision?.(message);
        return;
      case 'login.verdict':
        this.options.onLoginVerdict?.(message);
        return;
      case 'error':
        this.log.warn('collector reported an error', { code: message.error.code, message: message.error.message });
        return;
      default: {
        const unhandled: never = message;
        this.log.warn('unhandled collector message', { message: unhandled });
      }
    }
  }

  /**
   * Sends what is waiting: queued messages first, then batches, keeping at most
   * `window` unacknowledged and every frame within the rate budget. When it
   * must wait (for a token, or for a batch to fill) it sets one timer.
   */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      // Each round sends a batch or returns; the bound only guards against a reconnect storm mid-read.
      for (let round = 0; round < 1000; round++) {
        if (!this.sendQueued()) return this.pumpAfter(this.pacer?.waitMs() ?? 0);
        if (this.state !== 'ready' || !this.deviceId || !this.pacer || this.inFlight >= this.options.window) return;
        const unsent = this.options.outbox.unsentAfter(this.sentUpTo);
        if (unsent === 0) {
          this.lingerSince = undefined;
          return;
        }
        if (unsent < this.pace.maxEvents) {
          const now = this.now();
          this.lingerSince ??= now;
          const left = this.lingerSince + this.options.batchLingerMs - now;
          if (left > 0) return this.pumpAfter(left);
        }
        const wait = this.pacer.waitMs();
        if (wait > 0) return this.pumpAfter(wait);
        const from = this.sentUpTo;
        const epoch = this.epoch;
        const batch = await this.nextBatch(from, this.deviceId);
        // A reconnect while reading moved the starting point: what was read belongs to the old
        // position. Sending it would skip events that the cumulative ack would then let the outbox forget.
        if (epoch !== this.epoch || from !== this.sentUpTo) continue;
        if (!batch) return;
        // A queued message may have taken the token meanwhile: the next round waits for another.
        if (!this.pacer.take()) continue;
        if (!this.sendFrame(batch.text)) return;
        this.sentUpTo = batch.lastSeq;
        this.inFlight++;
        this.lingerSince = undefined;
        this.largestFrame = Math.max(this.largestFrame, batch.bytes);
      }
    } catch (e) {
      // The outbox closed under a read (the agent is stopping), or a read failed: the next ack or event tries again.
      if (!this.stopped) this.log.warn('could not read the outbox for the next batch', { error: String(e) });
    } finally {
      this.pumping = false;
    }
  }

  /** The frame budget now: the collector's limit with margin, lowered by any frame it refused for size. */
  private frameBudget(): number {
    return Math.min(this.pace.frameBytes, this.frameCap);
  }

  /**
   * The next batch after `from`, encoded, within the count and byte budget. An
   * event too large for any frame this collector takes goes as a stand-in
   * (`outbox.too-large`) under its own id and number, so it cannot wedge the link.
   */
  private async nextBatch(from: number, deviceId: string): Promise<{ text: string; bytes: number; lastSeq: number } | undefined> {
    const budget = this.frameBudget();
    const wrapper = Buffer.byteLength(encode({ v: PROTOCOL_VERSION, type: 'event.batch', events: [] as unknown as [EventEnvelope] }));
    const extraBytesPerEvent = Buffer.byteLength(`,"deviceId":${JSON.stringify(deviceId)}`);
    let stored: StoredEvent[] = await this.options.outbox.read(from, this.pace.maxEvents, { maxBytes: budget - wrapper, extraBytesPerEvent });
    if (stored.length === 0) return undefined;
    // The outbox's estimate is exact for what it stored; halving covers anything it did not foresee, in a few steps.
    for (let step = 0; step < 32; step++) {
      const events = stored.map((e) => ({ ...e, deviceId }) as EventEnvelope);
      const text = encode({ v: PROTOCOL_VERSION, type: 'event.batch', events });
      const bytes = Buffer.byteLength(text);
      if (bytes <= budget) return { text, bytes, lastSeq: stored[stored.length - 1]!.seq };
      if (stored.length > 1) {
        stored = stored.slice(0, Math.ceil(stored.length / 2));
        continue;
      }
      const [alone] = stored as [StoredEvent];
      this.log.warn('an event is larger than any frame the collector takes; sending a stand-in in its place', {
        seq: alone.seq,
        type: alone.type,
        bytes: bytes - wrapper,
        frameBudget: budget,
      });
      stored = [{ ...tooLargeStandIn(alone, bytes - wrapper, budget), id: alone.id, seq: alone.seq } as StoredEvent];
    }
    return undefined;
  }

  /** Runs the pump again in `ms` (one timer; an earlier need replaces a later one). */
  private pumpAfter(ms: number): void {
    if (this.stopped) return;
    const due = this.now() + Math.max(1, ms);
    if (this.pumpTimer && this.pumpDue <= due) return;
    clearTimeout(this.pumpTimer);
    this.pumpDue = due;
    this.pumpTimer = setTimeout(
      () => {
        this.pumpTimer = undefined;
        void this.pump();
      },
      Math.max(1, ms),
    );
  }

  /** Reports how a command went; false when the link is down (the collector then shows it delivered but unanswered). */
  sendCommandResult(commandId: string, ok: boolean, error?: { code: string; message: string }): boolean {
    return this.state === 'ready' && this.sendPaced({ v: PROTOCOL_VERSION, type: 'command.result', commandId, ok, ...(error ? { error } : {}) });
  }

  /** Sends a permission request; false while the link is down (the caller keeps it and sends it again on `onReady`). */
  sendPermissionRequest(request: Extract<Parameters<typeof encode>[0], { type: 'permission.request' }>): boolean {
    return this.state === 'ready' && this.sendPaced(request);
  }

  /** A login claim, renewal, release or eviction; false when the collector cannot be reached now. */
  sendLogin(message: Extract<Parameters<typeof encode>[0], { type: 'login.claim' | 'login.renew' | 'login.release' | 'login.evict' }>): boolean {
    return this.state === 'ready' && this.sendPaced(message);
  }

  /**
   * Sends a message other than a batch within the rate budget: now if a token
   * is there and nothing is queued before it, else queued (ahead of every
   * batch) until one is. False when the socket is not open or the queue is full.
   */
  private sendPaced(message: Parameters<typeof encode>[0]): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.pacer) return false;
    const text = encode(message);
    if (this.queued.length === 0 && this.pacer.take()) return this.sendFrame(text);
    if (this.queued.length >= MAX_QUEUED_MESSAGES) return false;
    this.queued.push(text);
    this.pumpAfter(this.pacer.waitMs());
    return true;
  }

  /** Sends queued messages while there are tokens; true once none is left waiting. */
  private sendQueued(): boolean {
    while (this.queued.length > 0) {
      if (!this.pacer?.take()) return false;
      if (!this.sendFrame(this.queued.shift()!)) return false;
    }
    return true;
  }

  private sendFrame(text: string): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(text);
    return true;
  }

  /** A pong must come back before the next ping; if not, the link is dead though TCP has not noticed. */
  private startHeartbeat(ws: WebSocket): void {
    this.awaitingPong = false;
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      if (this.awaitingPong) {
        this.log.warn('collector did not answer a ping; reconnecting');
        ws.terminate();
        return;
      }
      this.awaitingPong = true;
      ws.ping();
    }, this.options.heartbeatMs);
    this.heartbeat.unref();
  }

  private scheduleReconnect(): void {
    if (this.state === 'stopped') return;
    this.state = 'waiting';
    const jitter = backoffDelay(this.attempt++, this.options.backoffBaseMs, this.options.backoffCapMs, this.random);
    const delay = this.retryAfterMs !== undefined ? this.retryAfterMs + Math.floor(this.random() * 1000) : jitter;
    this.retryAfterMs = undefined;
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }
}
