import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import {
  type CollectorToAgent,
  type Command,
  PROTOCOL_VERSION,
  type Platform,
  decodeCollectorToAgent,
  encode,
  type EventEnvelope,
} from '../../shared/protocol';
import type { Policy } from '../../shared/policy/schema';
import { proofFor } from '../../node-common/device-proof';
import type { Logger } from '../../node-common/logging';
import type { IdentityFile } from '../identity';
import type { Outbox } from '../outbox/outbox';
import { fullJitterDelay } from './backoff';
import { checkCollectorUrl } from './collector-url';

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
  batchSize: number;
  /** Batches sent and not yet acknowledged, at most. */
  window: number;
  heartbeatMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  random?: () => number;
}

export const DEFAULT_LINK_TUNING = { batchSize: 200, window: 4, heartbeatMs: 30_000, backoffBaseMs: 1_000, backoffCapMs: 5 * 60_000 };

export type LinkState = 'idle' | 'connecting' | 'authenticating' | 'ready' | 'waiting' | 'stopped';

/**
 * The agent's one connection to the collector. It sends what the outbox holds,
 * in order, and lets the outbox forget only what the collector acknowledged.
 * After any failure it waits (full jitter, or what a busy collector asked for)
 * and starts again from the last acknowledgement.
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
  private readonly log: Logger;
  private readonly random: () => number;
  connectedSince: Date | undefined;

  constructor(private readonly options: LinkOptions) {
    checkCollectorUrl(options.url, options.allowInsecure);
    this.log = options.logger.child({ component: 'link' });
    this.random = options.random ?? Math.random;
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

  async stop(): Promise<void> {
    this.state = 'stopped';
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const done = setTimeout(() => (ws.terminate(), resolve()), 2000);
      ws.once('close', () => (clearTimeout(done), resolve()));
      ws.close(1000, 'agent stopping');
    });
  }

  private async connect(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'connecting';
    const identity = await this.options.identity.load().catch((e: unknown) => {
      this.log.error('identity file unreadable', { error: String(e) });
      return undefined;
    });
    if (!identity && !this.options.enrollmentToken) {
      this.log.error('not enrolled and no enrollment token configured; set collector.enrollmentToken');
      return this.scheduleReconnect();
    }
    const installationId = identity ? undefined : await this.options.identity.installationId();
    const ca = this.options.caFile ? readFileSync(this.options.caFile) : undefined;
    const ws = new WebSocket(this.options.url, { maxPayload: 8 * 1024 * 1024, perMessageDeflate: false, handshakeTimeout: 15_000, ...(ca ? { ca } : {}) });
    this.ws = ws;
    ws.on('open', () => {
      this.state = 'authenticating';
      this.startHeartbeat(ws);
      const policyRevision = this.options.policyRevision();
      const policyId = this.options.policyId?.();
      this.send({
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
      const decoded = decodeCollectorToAgent(Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), { maxBytes: 8 * 1024 * 1024, maxDepth: 32 });
      if (!decoded.ok) {
        this.log.warn('collector sent a message that is not valid', { problems: decoded.problems.slice(0, 3) });
        return;
      }
      this.inbox = this.inbox
        .then(() => this.onMessage(decoded.value))
        .catch((e: unknown) => {
          this.log.error('failed to handle a collector message', { type: decoded.value.type, error: String(e) });
          ws.terminate();
        });
    });
    ws.on('pong', () => (this.awaitingPong = false));
    ws.on('error', (e) => this.log.warn('collector connection error', { error: e.message }));
    ws.on('close', (code, reason) => {
      clearInterval(this.heartbeat);
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.connectedSince = undefined;
      if (this.state === 'stopped') return;
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
        this.send({
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
        this.attempt = 0;
        this.connectedSince = new Date();
        // A fresh outbox on a known device numbered from 1 again: move its events past what the collector holds.
        if (this.options.outbox.fresh) await this.options.outbox.renumberAfter(message.lastAckedSeq);
        // An ack lost in a crash: the collector already holds these.
        if (message.lastAckedSeq > this.options.outbox.lastAckedSeq) await this.options.outbox.ack(message.lastAckedSeq);
        this.sentUpTo = this.options.outbox.lastAckedSeq;
        this.inFlight = 0;
        this.epoch++;
        this.log.info('connected to the collector', { deviceId: message.deviceId, pending: this.options.outbox.pendingCount });
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

  /** Sends the next batches, keeping at most `window` unacknowledged. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.state === 'ready' && this.inFlight < this.options.window && this.deviceId) {
        const from = this.sentUpTo;
        const epoch = this.epoch;
        const stored = await this.options.outbox.read(from, this.options.batchSize);
        // A reconnect while reading moved the starting point: what was read belongs to the old
        // position. Sending it would skip events that the cumulative ack would then let the outbox forget.
        if (epoch !== this.epoch || from !== this.sentUpTo) continue;
        if (stored.length === 0) return;
        const deviceId = this.deviceId;
        const events = stored.map((e) => ({ ...e, deviceId }) as EventEnvelope);
        if (!this.send({ v: PROTOCOL_VERSION, type: 'event.batch', events })) return;
        this.sentUpTo = stored[stored.length - 1]!.seq;
        this.inFlight++;
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Reports how a command went; false when the link is down (the collector then shows it delivered but unanswered). */
  sendCommandResult(commandId: string, ok: boolean, error?: { code: string; message: string }): boolean {
    return this.send({ v: PROTOCOL_VERSION, type: 'command.result', commandId, ok, ...(error ? { error } : {}) });
  }

  /** Sends a permission request; false while the link is down (the caller keeps it and sends it again on `onReady`). */
  sendPermissionRequest(request: Extract<Parameters<typeof encode>[0], { type: 'permission.request' }>): boolean {
    return this.state === 'ready' && this.send(request);
  }

  /** A login claim, renewal, release or eviction; false when the collector cannot be reached now. */
  sendLogin(message: Extract<Parameters<typeof encode>[0], { type: 'login.claim' | 'login.renew' | 'login.release' | 'login.evict' }>): boolean {
    return this.state === 'ready' && this.send(message);
  }

  private send(message: Parameters<typeof encode>[0]): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(encode(message));
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
    const jitter = fullJitterDelay(this.attempt++, this.options.backoffBaseMs, this.options.backoffCapMs, this.random);
    const delay = this.retryAfterMs !== undefined ? this.retryAfterMs + Math.floor(this.random() * 1000) : jitter;
    this.retryAfterMs = undefined;
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }
}
