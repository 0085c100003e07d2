import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { type ErrorCode, ERRORS, InvigilatorError } from '../shared/errors';
import type { Policy } from '../shared/policy/schema';
import {
  type AgentToCollector,
  type CollectorToAgent,
  type ConnectionLimits,
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  decodeAgentToCollector,
  encode,
} from '../shared/protocol';
import { proofMatches } from '../node-common/device-proof';
import type { Logger } from '../node-common/logging';
import { CLOSE, type CloseCode, closeCodeFor } from './close-codes';
import { hashToken, newId, newNonce, newSecret } from './device-auth';
import type { Metrics } from './metrics';
import { TokenBucket } from './rate-limiter';
import type { CommandBus } from './command-bus';
import { Admission, type Ticket, admissionKey } from './admission';
import { IngestBatcher } from './ingest-batcher';
import { firstOutOfOrder } from './sequence-rules';
import { DEFAULT_LOGIN_LEASE_LIMITS, LoginLeases } from './login-leases';
import type { CollectorStore, DeviceApproval, InsertResult } from './store/store';

export interface AgentSocketLimits {
  /** Largest frame accepted; far below ws's 100 MiB default. A batch of 500 events fits easily. */
  maxPayloadBytes: number;
  /** Time from connection to its first frame (the hello): the window an idle connection holds a slot for. */
  helloTimeoutMs: number;
  /** Time from connection to a completed authentication (hello, challenge, proof). */
  authTimeoutMs: number;
  /** Connections held at once; more are told to come back later. */
  maxConnections: number;
  /** Connections still authenticating at once: the expensive part of a reconnect storm. */
  maxHandshakes: number;
  /** Of `maxHandshakes`, kept for connections whose hello names a known device (see admission.ts). */
  reservedHandshakes: number;
  /** Connections still authenticating from one source address that have not named a known device; 0: no cap. */
  maxHandshakesPerAddress: number;
  messagesPerSecond: number;
  messageBurst: number;
  /** A peer that stops reading is cut off when this much is waiting to be sent to it. */
  maxBufferedBytes: number;
  /** Bounds of the random "come back after" delay given to a refused connection. */
  busyRetryMs: readonly [number, number];
  /** The collector pings every connection this often; one that has not answered the previous ping is cut off (dead, or not reading). */
  pingIntervalMs: number;
  /** Events per batch at most (the protocol's own cap is 500); said in `welcome`, and a larger batch is refused. */
  maxEventsPerBatch: number;
}

/** How soon a device waiting for approval is asked to try again: approval takes effect within this. */
const PENDING_RETRY_MS = 60_000;

export const DEFAULT_AGENT_SOCKET_LIMITS: AgentSocketLimits = {
  maxPayloadBytes: 1024 * 1024,
  helloTimeoutMs: 3_000,
  authTimeoutMs: 10_000,
  maxConnections: 20_000,
  maxHandshakes: 500,
  reservedHandshakes: 100,
  maxHandshakesPerAddress: 50,
  messagesPerSecond: 50,
  messageBurst: 200,
  maxBufferedBytes: 4 * 1024 * 1024,
  busyRetryMs: [1_000, 30_000],
  pingIntervalMs: 30_000,
  maxEventsPerBatch: PROTOCOL_LIMITS.maxEventsPerBatch,
};

export interface AgentSocketOptions {
  store: CollectorStore;
  /** Says when a device has new commands; the process holding its connection sends them. */
  bus: CommandBus;
  /** This process, as recorded in device presence. */
  instanceId: string;
  logger: Logger;
  metrics: Metrics;
  policy: () => Policy;
  limits: AgentSocketLimits;
  /** Milliseconds since the epoch; injected so tests control time. */
  now: () => number;
  random?: () => number;
  /** The login limit's service; default: one on this store with the default limits. */
  loginLeases?: LoginLeases;
}

/** What `welcome` tells the agent about its connection, so it paces itself instead of being closed with 4429 or 1009. */
export function connectionLimits(limits: AgentSocketLimits): ConnectionLimits {
  return {
    messagesPerSecond: limits.messagesPerSecond,
    messageBurst: limits.messageBurst,
    maxFrameBytes: limits.maxPayloadBytes,
    maxEventsPerBatch: limits.maxEventsPerBatch,
  };
}

type State =
  | { phase: 'hello' }
  | { phase: 'challenged'; deviceId: string; nonce: string; meta: DeviceMeta }
  /** `hostname` as the device said it in this connection's hello: what other devices' login verdicts show. */
  | { phase: 'ready'; deviceId: string; hostname: string };
interface DeviceMeta {
  hostname: string;
  agentVersion: string;
  policyRevision: number | null;
  /** Not stored: only compared with the collector's policy at hello. */
  policyId?: string | null;
}

/**
 * The `/agent` WebSocket endpoint. Each connection walks hello → (challenge →
 * proof) → ready; every frame is validated against the shared schemas, and
 * every failure closes the connection with its own documented code. Events are
 * acknowledged only after the store has made them durable.
 */
export class AgentSocket {
  private readonly wss: WebSocketServer;
  private readonly byDevice = new Map<string, AgentConnection>();
  /** Connections that said hello for a device and have not yet proved it: one per device, the newest. */
  private readonly proving = new Map<string, AgentConnection>();
  readonly admission: Admission;
  private readonly alive = new WeakSet<WebSocket>();
  private readonly heartbeat: NodeJS.Timeout;
  readonly ingest: IngestBatcher;
  readonly loginLeases: LoginLeases;

  constructor(private readonly options: AgentSocketOptions) {
    this.ingest = new IngestBatcher(options.store, options.now);
    this.admission = new Admission(options.limits);
    this.loginLeases =
      options.loginLeases ??
      new LoginLeases({
        store: options.store,
        bus: options.bus,
        policy: options.policy,
        logger: options.logger,
        metrics: options.metrics,
        now: options.now,
        limits: DEFAULT_LOGIN_LEASE_LIMITS,
      });
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.limits.maxPayloadBytes,
      perMessageDeflate: false,
      clientTracking: true,
      // Our decoder checks UTF-8 itself and says so (4400 INV_ERR_INVALID_UTF8); ws would close 1007 with no message.
      skipUTF8Validation: true,
    });
    this.heartbeat = setInterval(() => this.checkAlive(), options.limits.pingIntervalMs);
    this.heartbeat.unref();
    options.bus.subscribe((deviceId) => this.byDevice.get(deviceId)?.deliverCommands());
    options.bus.subscribeRevoked((deviceId) => this.revoke(deviceId));
    const m = options.metrics;
    m.describe('invigilator_agent_connections', 'open agent connections');
    m.gauge('invigilator_agent_connections', () => this.wss.clients.size);
    m.describe('invigilator_agents_online', 'authenticated agents connected to this process');
    m.gauge('invigilator_agents_online', () => this.byDevice.size);
    m.describe('invigilator_events_stored_total', 'events stored for the first time');
    m.describe('invigilator_events_duplicate_total', 'events received again and not stored twice');
    m.describe('invigilator_agent_closes_total', 'agent connections closed, by close code');
    m.describe('invigilator_permission_requests_total', 'permission requests stored for the first time, by kind');
  }

  private checkAlive(): void {
    this.options.store
      .refreshPresence(this.options.instanceId, new Date(this.options.now()).toISOString())
      // Revoked but still here: the notice was lost, or came while the connection was still authenticating.
      .then((revoked) => revoked.forEach((id) => this.revoke(id)))
      .catch((e: unknown) => {
        this.options.logger.warn('could not refresh device presence', { error: String(e) });
      });
    for (const ws of this.wss.clients) {
      if (!this.alive.has(ws)) {
        this.options.metrics.inc('invigilator_agent_closes_total', { code: 'no-pong' });
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      ws.ping();
    }
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.alive.add(ws);
      ws.on('pong', () => this.alive.add(ws));
      const remote = req.socket.remoteAddress ?? 'unknown';
      // Evicting a ticket happens only later, for a newcomer, by which time `connection` is set.
      const ticket =
        this.wss.clients.size > this.options.limits.maxConnections ? undefined : this.admission.admit(admissionKey(remote), () => connection.refuseBusy());
      if (!ticket) {
        this.options.metrics.inc('invigilator_agent_closes_total', { code: CLOSE.BUSY });
        this.sendBusy(ws);
        return;
      }
      const connection = new AgentConnection(ws, this, this.options, remote, ticket);
    });
  }

  /** `busy` (when to come back), the coded `error`, then close 4503. */
  sendBusy(ws: WebSocket): void {
    const [lo, hi] = this.options.limits.busyRetryMs;
    const retryAfterMs = Math.round(lo + (this.options.random ?? Math.random)() * (hi - lo));
    ws.send(encode({ v: PROTOCOL_VERSION, type: 'busy', retryAfterMs }));
    // Like every 44xx/45xx close, the coded reason too: `busy` says when, `error` says why.
    ws.send(
      encode({ v: PROTOCOL_VERSION, type: 'error', error: { code: 'INV_ERR_BUSY', message: `${ERRORS.INV_ERR_BUSY}: come back in ${retryAfterMs} ms` } }),
    );
    ws.close(CLOSE.BUSY, 'INV_ERR_BUSY');
  }

  /** Registers an authenticated connection; an older one for the same device is closed, since only one may speak for it. */
  register(deviceId: string, connection: AgentConnection): void {
    const previous = this.byDevice.get(deviceId);
    this.byDevice.set(deviceId, connection);
    previous?.close(CLOSE.SUPERSEDED, 'INV_ERR_SUPERSEDED', 'this device authenticated again on another connection');
  }

  /** The device was revoked: its connection here, if any, is closed (4403) and nothing more from it is handled. */
  revoke(deviceId: string): void {
    this.byDevice.get(deviceId)?.close(CLOSE.FORBIDDEN, 'INV_ERR_DEVICE_REVOKED', 'revoked by the network manager');
  }

  /**
   * A connection said hello for this device and was challenged. Only the newest may prove it: an older
   * one still proving is closed, so hellos naming a known device id cannot pile up in the kept slots.
   */
  startProving(deviceId: string, connection: AgentConnection): void {
    const previous = this.proving.get(deviceId);
    this.proving.set(deviceId, connection);
    if (previous !== connection) previous?.close(CLOSE.SUPERSEDED, 'INV_ERR_SUPERSEDED', 'a newer connection for this device is proving itself');
  }

  stopProving(deviceId: string, connection: AgentConnection): void {
    if (this.proving.get(deviceId) === connection) this.proving.delete(deviceId);
  }

  unregister(deviceId: string, connection: AgentConnection): void {
    if (this.byDevice.get(deviceId) === connection) this.byDevice.delete(deviceId);
  }

  isOnline(deviceId: string): boolean {
    return this.byDevice.has(deviceId);
  }

  onlineDevices(): string[] {
    return [...this.byDevice.keys()];
  }

  /** Pushes a message down an open connection; false when the device is not connected to this process. */
  send(deviceId: string, message: CollectorToAgent): boolean {
    const connection = this.byDevice.get(deviceId);
    return connection ? connection.send(message) : false;
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    await this.options.store.clearPresence(this.options.instanceId).catch(() => undefined);
    for (const ws of this.wss.clients) ws.close(CLOSE.GOING_AWAY, 'collector stopping');
    await new Promise<void>((resolve) => {
      const deadline = setTimeout(() => {
        for (const ws of this.wss.clients) ws.terminate();
        resolve();
      }, 2000);
      const check = () => (this.wss.clients.size === 0 ? (clearTimeout(deadline), resolve()) : setTimeout(check, 20));
      check();
    });
    this.wss.close();
  }
}

class AgentConnection {
  private state: State = { phase: 'hello' };
  private readonly bucket: TokenBucket;
  private readonly helloTimer: NodeJS.Timeout;
  private readonly authTimer: NodeJS.Timeout;
  /** Frames are handled one at a time, in order, so acknowledgements follow the order events arrived in. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly log: Logger;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: AgentSocket,
    private readonly options: AgentSocketOptions,
    private readonly remote: string,
    private readonly ticket: Ticket,
  ) {
    this.log = options.logger.child({ component: 'agent-socket', remote });
    this.bucket = new TokenBucket(options.limits.messagesPerSecond, options.limits.messageBurst, options.now);
    this.helloTimer = setTimeout(() => this.fail('INV_ERR_HELLO_TIMEOUT', 'no hello in time'), options.limits.helloTimeoutMs);
    this.authTimer = setTimeout(() => this.fail('INV_ERR_HELLO_TIMEOUT', 'not authenticated in time'), options.limits.authTimeoutMs);
    ws.on('message', (data, isBinary) => this.onFrame(data, isBinary));
    ws.on('close', (code) => this.onClose(code));
    ws.on('error', (err) => {
      // ws reports oversized frames here and closes with 1009 itself.
      this.log.warn('agent connection error', { error: err.message, code: (err as { code?: string }).code });
    });
  }

  get authenticated(): boolean {
    return this.state.phase === 'ready';
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    clearTimeout(this.helloTimer);
    this.socket.admission.spoke(this.ticket);
    if (!this.bucket.take()) return this.fail('INV_ERR_RATE_LIMITED', `more than ${this.options.limits.messagesPerSecond} messages a second`);
    if (isBinary) return this.fail('INV_ERR_BINARY_FRAME', 'send each message as a text frame');
    const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const decoded = decodeAgentToCollector(bytes, { maxBytes: this.options.limits.maxPayloadBytes, maxDepth: 32 });
    if (!decoded.ok) {
      const first = decoded.problems[0]!;
      return this.fail(first.code, `${first.path}: ${first.message}`.slice(0, 200));
    }
    const message = decoded.value;
    this.queue = this.queue
      .then(() => (this.closed ? undefined : this.handle(message)))
      .catch((e: unknown) => {
        const code = e instanceof InvigilatorError ? e.code : 'INV_ERR_INTERNAL';
        if (code === 'INV_ERR_INTERNAL' || closeCodeFor(code) === CLOSE.INTERNAL)
          this.log.error('failed to handle an agent message', { type: message.type, error: String(e) });
        this.fail(code, e instanceof Error ? e.message : String(e));
      });
  }

  private async handle(message: AgentToCollector): Promise<void> {
    switch (message.type) {
      case 'hello':
        return this.onHello(message);
      case 'auth.proof':
        return this.onProof(message);
      case 'event.batch':
        return this.onEvents(message);
      case 'command.result': {
        const deviceId = await this.requireUnrevoked();
        // A device answers for its own commands only.
        const command = await this.options.store.getCommand(message.commandId);
        if (!command || command.deviceId !== deviceId) throw new InvigilatorError('INV_ERR_FORGED_DEVICE', `command ${message.commandId} is not this device's`);
        this.log.info('command result', { commandId: message.commandId, ok: message.ok, error: message.error?.code });
        await this.options.store.completeCommand(message.commandId, { ok: message.ok, error: message.error ?? null, now: this.iso() });
        return;
      }
      case 'permission.request':
        return this.onPermissionRequest(message);
      case 'login.claim':
      case 'login.evict':
      case 'login.renew':
      case 'login.release':
        return this.onLogin(message);
      default: {
        const unhandled: never = message;
        throw new InvigilatorError('INV_ERR_UNKNOWN_MESSAGE', JSON.stringify(unhandled).slice(0, 80));
      }
    }
  }

  private async onHello(hello: Extract<AgentToCollector, { type: 'hello' }>): Promise<void> {
    if (this.state.phase !== 'hello') throw new InvigilatorError('INV_ERR_UNEXPECTED_MESSAGE', 'hello twice');
    // Enrollments may not take the handshake slots kept for known devices.
    if (hello.auth.kind === 'enroll' && !this.socket.admission.mayEnroll(this.ticket)) return this.refuseBusy();
    const { store } = this.options;
    const meta: DeviceMeta = {
      hostname: hello.hostname,
      agentVersion: hello.agentVersion,
      policyRevision: hello.policyRevision ?? null,
      policyId: hello.policyId ?? null,
    };
    if (hello.auth.kind === 'enroll') return this.onEnroll(hello, hello.auth, meta);
    const auth = await store.deviceAuth(hello.auth.deviceId);
    if (!auth) throw new InvigilatorError('INV_ERR_AUTH_FAILED', 'unknown device');
    if (auth.revoked) throw new InvigilatorError('INV_ERR_DEVICE_REVOKED');
    this.socket.admission.namedKnownDevice(this.ticket);
    const nonce = newNonce();
    this.state = { phase: 'challenged', deviceId: hello.auth.deviceId, nonce, meta };
    this.socket.startProving(hello.auth.deviceId, this);
    this.send({ v: PROTOCOL_VERSION, type: 'challenge', nonce });
  }

  /**
   * Enrollment: the token is the credential for this connection. It must be usable and, for a
   * new device, within its use limit and rate; the device counts at once only if the token
   * approves at once, and otherwise gets its identity and waits, disconnected, for the network
   * manager (docs/architecture.md, "Enrollment").
   */
  private async onEnroll(
    hello: Extract<AgentToCollector, { type: 'hello' }>,
    auth: { token: string; installationId: string },
    meta: DeviceMeta,
  ): Promise<void> {
    const { store } = this.options;
    const now = this.iso();
    const token = await store.findUsableEnrollmentToken(hashToken(auth.token), now);
    if (!token) throw new InvigilatorError('INV_ERR_ENROLL_TOKEN_INVALID');
    const existing = await store.deviceByInstallation(auth.installationId);
    let deviceId: string;
    let secret: Buffer;
    let approval: DeviceApproval;
    if (existing) {
      // The agent crashed before saving what it was given: the same device again (no use of the token spent),
      // but only until the device has proved its secret once, after which its identity file exists.
      if (existing.revoked) throw new InvigilatorError('INV_ERR_DEVICE_REVOKED');
      if (existing.confirmed) throw new InvigilatorError('INV_ERR_AUTH_FAILED', 'this installation is enrolled already and must use its identity');
      ({ deviceId, secret, approval } = existing);
      this.log.info('device enrolled again after an interrupted enrollment', { deviceId });
    } else {
      const use = await store.useEnrollmentToken(token.id, now);
      if (use === 'used-up') throw new InvigilatorError('INV_ERR_ENROLL_TOKEN_USED_UP', `token ${token.id}`);
      if (use === 'rate-limited') throw new InvigilatorError('INV_ERR_ENROLL_RATE_LIMITED', `token ${token.id}`);
      deviceId = newId('dev-');
      secret = newSecret();
      approval = token.approval === 'automatic' ? 'approved' : 'pending';
      await store.enrollDevice({
        id: deviceId,
        installationId: auth.installationId,
        secret,
        hostname: hello.hostname,
        platform: hello.platform,
        agentVersion: hello.agentVersion,
        tokenId: token.id,
        now,
        approval,
        enrolledFrom: this.remote,
      });
      this.log.info('device enrolled', { deviceId, hostname: hello.hostname, tokenId: token.id, approval });
    }
    this.send({ v: PROTOCOL_VERSION, type: 'enrolled', deviceId, deviceSecret: secret.toString('base64url') });
    if (approval === 'pending') return this.waitForApproval(deviceId);
    // The token was the credential for this connection: no challenge needed.
    return this.becomeReady(deviceId, (await store.deviceAuth(deviceId))?.lastSeq ?? 0, meta);
  }

  /**
   * A pending device may do nothing but ask again: it is told when (`busy`), then closed with
   * INV_ERR_DEVICE_PENDING (4403). Nothing it sends is stored and nothing is sent to it.
   */
  private waitForApproval(deviceId: string): never {
    this.send({ v: PROTOCOL_VERSION, type: 'busy', retryAfterMs: PENDING_RETRY_MS });
    throw new InvigilatorError('INV_ERR_DEVICE_PENDING', `device ${deviceId}`);
  }

  private async onProof(proof: Extract<AgentToCollector, { type: 'auth.proof' }>): Promise<void> {
    const state = this.state;
    if (state.phase !== 'challenged') throw new InvigilatorError('INV_ERR_UNEXPECTED_MESSAGE', 'proof without a challenge');
    if (proof.deviceId !== state.deviceId || proof.nonce !== state.nonce)
      throw new InvigilatorError('INV_ERR_AUTH_FAILED', 'proof for another device or challenge');
    const auth = await this.options.store.deviceAuth(state.deviceId);
    if (!auth || !proofMatches(auth.secret, state.nonce, state.deviceId, proof.proof))
      throw new InvigilatorError('INV_ERR_AUTH_FAILED', 'proof does not match');
    if (auth.revoked) throw new InvigilatorError('INV_ERR_DEVICE_REVOKED');
    // Only the device itself learns that it waits: the check comes after its proof.
    if (auth.approval !== 'approved') return this.waitForApproval(state.deviceId);
    await this.becomeReady(state.deviceId, auth.lastSeq, state.meta, true);
  }

  /** `proved`: the device proved its secret on this connection (rather than enrolling with a token). */
  private async becomeReady(deviceId: string, lastSeq: number, meta: DeviceMeta, proved = false): Promise<void> {
    clearTimeout(this.authTimer);
    this.state = { phase: 'ready', deviceId, hostname: meta.hostname };
    this.socket.admission.release(this.ticket);
    this.socket.stopProving(deviceId, this);
    this.log.defaultMeta = { ...this.log.defaultMeta, deviceId };
    await this.socket.ingest.connected(deviceId, { ...meta, instance: this.options.instanceId, now: this.iso(), confirmed: proved });
    this.socket.register(deviceId, this);
    this.send({ v: PROTOCOL_VERSION, type: 'welcome', deviceId, serverTime: this.iso(), lastAckedSeq: lastSeq, limits: connectionLimits(this.options.limits) });
    const policy = this.options.policy();
    if (meta.policyRevision !== policy.revision || meta.policyId !== policy.id) this.send({ v: PROTOCOL_VERSION, type: 'policy.push', policy });
    // Commands queued while the device was away.
    this.deliverCommands();
  }

  /**
   * Sends the device's undelivered commands, then its undelivered permission
   * decisions (so an approval's `usb-allow` arrives before the approval).
   * Each is claimed (marked delivered) before it is sent, and the claim is
   * undone if the send fails, so each is sent once by one process.
   */
  deliverCommands(): void {
    const state = this.state;
    if (state.phase !== 'ready') return;
    const { store } = this.options;
    this.queue = this.queue
      .then(async () => {
        for (const c of await store.undeliveredCommands(state.deviceId)) {
          await store.markCommandDelivered(c.id, this.iso());
          if (!this.send({ v: PROTOCOL_VERSION, type: 'command', commandId: c.id, issuedAt: c.createdAt, command: c.command })) {
            await store.undoCommandDelivery(c.id);
            return;
          }
        }
        for (const d of await store.undeliveredDecisions(state.deviceId)) {
          if (d.status === 'pending' || !(await store.claimDecisionDelivery(state.deviceId, d.requestId, this.iso()))) continue;
          const sent = this.send({
            v: PROTOCOL_VERSION,
            type: 'permission.decision',
            requestId: d.requestId,
            decision: d.status,
            ...(d.note !== null ? { note: d.note } : {}),
            ...(d.expiresAt !== null ? { expiresAt: d.expiresAt } : {}),
          });
          if (!sent) {
            await store.undoDecisionDelivery(state.deviceId, d.requestId);
            return;
          }
          this.log.info('permission decision delivered', { requestId: d.requestId, decision: d.status });
        }
      })
      .catch((e: unknown) => {
        this.log.error('could not deliver commands', { error: String(e) });
      });
  }

  /**
   * Stored once however often it is sent; the network manager decides it
   * through the API. A resend of a request already decided means the agent
   * did not keep the decision: it is sent again.
   */
  private async onPermissionRequest(request: Extract<AgentToCollector, { type: 'permission.request' }>): Promise<void> {
    const deviceId = await this.requireUnrevoked();
    const { store } = this.options;
    const { created, record } = await store.createPermissionRequest({
      deviceId,
      requestId: request.requestId,
      kind: request.kind,
      subject: request.subject,
      user: request.user,
      reason: request.reason,
      createdAt: this.iso(),
    });
    if (created) {
      this.options.metrics.inc('invigilator_permission_requests_total', { kind: request.kind });
      this.log.info('permission requested', { requestId: request.requestId, kind: request.kind, user: request.user.name });
    } else if (record.status !== 'pending') {
      await store.undoDecisionDelivery(deviceId, request.requestId);
      this.deliverCommands();
    }
  }

  private async onEvents(batch: Extract<AgentToCollector, { type: 'event.batch' }>): Promise<void> {
    const deviceId = this.requireReady();
    const forged = batch.events.find((e) => e.deviceId !== deviceId);
    if (forged) throw new InvigilatorError('INV_ERR_FORGED_DEVICE', `event ${forged.id} names device ${forged.deviceId}`);
    const { maxEventsPerBatch } = this.options.limits;
    if (batch.events.length > maxEventsPerBatch)
      throw new InvigilatorError('INV_ERR_SCHEMA_RANGE', `$.events: ${batch.events.length} events, more than the ${maxEventsPerBatch} this collector takes`);
    const disorder = firstOutOfOrder(batch.events);
    if (disorder) throw new InvigilatorError('INV_ERR_BATCH_NOT_ASCENDING', `seq ${disorder.seq} follows seq ${disorder.after}`);
    let result;
    try {
      result = await this.socket.ingest.submit(deviceId, batch.events);
    } catch (e) {
      throw new InvigilatorError('INV_ERR_STORE_FAILED', e instanceof Error ? e.message : String(e));
    }
    // Refused whole, nothing stored: no ack, or the agent would delete events the collector does not hold.
    if (result.refused?.code === 'INV_ERR_SEQ_CONFLICT')
      throw new InvigilatorError('INV_ERR_SEQ_CONFLICT', `seq ${result.refused.seq} is stored under another event id`);
    if (result.refused) throw new InvigilatorError('INV_ERR_DEVICE_REVOKED', 'revoked by the network manager');
    const { metrics } = this.options;
    metrics.inc('invigilator_events_stored_total', {}, result.inserted);
    metrics.inc('invigilator_events_duplicate_total', {}, batch.events.length - result.inserted);
    const upToSeq = batch.events.reduce((max, e) => Math.max(max, e.seq), 0);
    this.send({ v: PROTOCOL_VERSION, type: 'ack', upToSeq });
    if (result.softwareRefused) await this.reportSoftwareRefused(deviceId, result.softwareRefused);
  }

  /**
   * The device's software list is full (issue 13: 100,000 fake programs). Its events were stored and
   * acknowledged all the same; the agent is told with a coded error (the connection stays open), and
   * the network manager once per filling, by a `software.inventory.full` event.
   */
  private async reportSoftwareRefused(deviceId: string, refused: NonNullable<InsertResult['softwareRefused']>): Promise<void> {
    this.refuse('INV_ERR_INVENTORY_TOO_LARGE', `${refused.programs} programs not listed: this collector lists at most ${refused.cap} per device`);
    if (!refused.newlyFull) return;
    const { hostname } = this.requireReadyState();
    this.log.warn('software list full: further programs are stored as events only', { cap: refused.cap, hostname });
    const now = this.iso();
    await this.options.store
      .insertCollectorEvent(
        { id: randomUUID(), time: now, type: 'software.inventory.full', severity: 'warning', data: { deviceId, hostname, cap: refused.cap } },
        now,
      )
      .catch((e: unknown) => this.log.error('could not record that the software list is full', { error: String(e) }));
  }

  /** The login limit is decided by its service; this only carries the answer back. */
  private async onLogin(message: Extract<AgentToCollector, { type: 'login.claim' | 'login.evict' | 'login.renew' | 'login.release' }>): Promise<void> {
    const device = this.requireReadyState();
    const { loginLeases } = this.socket;
    if (message.type === 'login.renew' || message.type === 'login.release') {
      const refusal =
        message.type === 'login.renew'
          ? await loginLeases.renew(device.deviceId, message.sessionIds)
          : await loginLeases.release(device.deviceId, message.sessionId);
      if (refusal) this.refuse(refusal.code, refusal.detail);
      return;
    }
    const answer = await loginLeases.claim(device, message);
    if ('refused' in answer) return this.refuse(answer.refused.code, answer.refused.detail);
    this.send(answer.verdict);
  }

  /** A refused request: a coded `error`, and the connection stays open. */
  private refuse(code: ErrorCode, detail: string): void {
    this.send({ v: PROTOCOL_VERSION, type: 'error', error: { code, message: `${ERRORS[code]}: ${detail}`.slice(0, 1000) } });
  }

  /**
   * For the rare messages that write something other than events: one read, so a device revoked
   * on another process writes nothing even before the notice arrives (events are checked in their
   * own transaction).
   */
  private async requireUnrevoked(): Promise<string> {
    const deviceId = this.requireReady();
    if ((await this.options.store.deviceAuth(deviceId))?.revoked !== false)
      throw new InvigilatorError('INV_ERR_DEVICE_REVOKED', 'revoked by the network manager');
    return deviceId;
  }

  private requireReady(): string {
    return this.requireReadyState().deviceId;
  }

  private requireReadyState(): { deviceId: string; hostname: string } {
    if (this.state.phase !== 'ready') throw new InvigilatorError('INV_ERR_NOT_AUTHENTICATED');
    return this.state;
  }

  send(message: CollectorToAgent): boolean {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return false;
    if (this.ws.bufferedAmount > this.options.limits.maxBufferedBytes) {
      // The peer is not reading: a close frame would never get through either.
      this.log.warn('agent stopped reading; connection cut', { buffered: this.ws.bufferedAmount });
      this.closed = true;
      this.ws.terminate();
      return false;
    }
    this.ws.send(encode(message));
    return true;
  }

  /** Admission needs the room: told to come back later (busy, 4503). */
  refuseBusy(): void {
    if (this.closed) return;
    this.closed = true;
    this.log.info('connection told to come back later', { phase: this.state.phase });
    this.socket.sendBusy(this.ws);
  }

  private fail(code: ErrorCode, detail: string): void {
    this.close(closeCodeFor(code), code, detail);
  }

  close(closeCode: CloseCode, code: ErrorCode, detail: string): void {
    if (this.closed) return;
    this.send({ v: PROTOCOL_VERSION, type: 'error', error: { code, message: `${ERRORS[code]}: ${detail}`.slice(0, 1000) } });
    this.closed = true;
    this.log.info('closing agent connection', { closeCode, code, detail });
    this.ws.close(closeCode, code);
  }

  private onClose(code: number): void {
    this.closed = true;
    clearTimeout(this.helloTimer);
    clearTimeout(this.authTimer);
    this.socket.admission.release(this.ticket);
    if (this.state.phase === 'challenged') this.socket.stopProving(this.state.deviceId, this);
    this.options.metrics.inc('invigilator_agent_closes_total', { code });
    if (this.state.phase === 'ready') {
      this.socket.unregister(this.state.deviceId, this);
      this.options.store.clearDevicePresence(this.state.deviceId, this.options.instanceId).catch(() => undefined);
    }
  }

  private iso(): string {
    return new Date(this.options.now()).toISOString();
  }
}
