import { chmod, chown, rm } from 'node:fs/promises';
import { type Server, type Socket, createServer } from 'node:net';
import { ERRORS, type ErrorCode } from '../../shared/errors';
import { PROTOCOL_VERSION, type TrayNotice, type TrayStatus, type TrayToAgent, decodeTrayToAgent, encode } from '../../shared/protocol';
import type { Logger } from '../../node-common/logging';
import type { NoticeSink } from '../usb/usb-guard';

type TrayAnswer = Extract<TrayToAgent, { type: 'tray.answer' }>;
type TrayReport = Extract<TrayToAgent, { type: 'tray.report' }>;
export type AnswerResult = { ok: true } | { ok: false; code: ErrorCode; message: string };

/**
 * Who is at the other end of a tray connection, as the OS says: the uid from
 * the socket's owner (only that user can open it), the session checked against
 * the OS's own list. Empty on the root-only socket.
 */
export interface TrayPeer {
  uid?: number;
  sessionId?: string;
}

export interface TrayServerOptions {
  /** A Unix socket path, or a Windows named pipe (`\\.\pipe\invigilator-tray`). */
  path: string;
  logger: Logger;
  /** Carries out an answer to a notice (ask for permission, an offline code, agree). */
  onAnswer: (answer: TrayAnswer, from: TrayPeer) => Promise<AnswerResult>;
  /**
   * A user's own socket: created mode 0600 and owned by this uid, so the OS
   * lets only that user (and root) connect. Who a tray speaks for is then
   * known from which socket it came through, never from what it says.
   */
  owner?: { uid: number; gid: number };
  /** Whether `sessionId` is a session of `uid` on this computer; a tray claiming another's session is cut off. */
  verifySession?: (uid: number, sessionId: string) => Promise<boolean>;
  /** A tray has said hello (and its session, if it named one, was checked). */
  onHello?: (from: TrayPeer) => void;
  /** A tray that had said hello has gone: closed at logout, or killed. */
  onGone?: (from: TrayPeer) => void;
  /** Seconds since the user last touched the keyboard or mouse, as the tray sees it. */
  onIdle?: (idleSeconds: number, from: TrayPeer) => void;
  /** "Report a problem" from the person at the computer. */
  onReport?: (report: TrayReport, from: TrayPeer) => Promise<void>;
  maxClients?: number;
}

/** A frame is one JSON message per line; nothing a tray sends is larger. */
const MAX_LINE_BYTES = 64 * 1024;
/** Notices kept for a tray that connects later (a user who logs in after a stick was blocked). */
const MAX_ACTIVE_NOTICES = 50;

/**
 * The agent's end of the local channel to the tray: one JSON message per
 * line, each decoded through the same untrusted-input boundary as everything
 * else. A server listens on one socket: a user's own (see UserTrays), or the
 * root-only one for administrators' tools. Who a tray speaks for is the
 * socket's owner, never a field of a message.
 */
export class TrayServer implements NoticeSink {
  private server: Server | undefined;
  private readonly clients = new Set<Socket>();
  /** Connections that have said hello, and who they are. */
  private readonly peers = new WeakMap<Socket, TrayPeer>();
  private readonly active = new Map<string, TrayNotice>();
  private lastStatus: TrayStatus | undefined;
  private readonly log: Logger;

  constructor(private readonly options: TrayServerOptions) {
    this.log = options.logger.child({ component: 'tray-server' });
  }

  async listen(): Promise<void> {
    const { path } = this.options;
    const unix = !path.startsWith('\\\\');
    // A socket left by a crashed agent would make listen fail with EADDRINUSE.
    if (unix) await rm(path, { force: true });
    const server = createServer((socket) => this.accept(socket));
    server.maxConnections = this.options.maxClients ?? 16;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (unix) {
      await chmod(path, 0o600);
      if (this.options.owner) await chown(path, this.options.owner.uid, this.options.owner.gid);
    }
    server.on('error', (e) => this.log.error('tray channel failed', { error: e.message }));
    this.server = server;
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    this.clients.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  show(notice: TrayNotice): void {
    this.active.delete(notice.noticeId);
    this.active.set(notice.noticeId, notice);
    while (this.active.size > MAX_ACTIVE_NOTICES) this.active.delete(this.active.keys().next().value!);
    this.broadcast(notice);
  }

  withdraw(noticeId: string): void {
    if (!this.active.delete(noticeId)) return;
    this.broadcast({ v: PROTOCOL_VERSION, type: 'tray.withdraw', noticeId });
  }

  status(status: TrayStatus): void {
    this.lastStatus = status;
    this.broadcast(status);
  }

  private broadcast(message: Parameters<typeof encode>[0]): void {
    const line = `${encode(message)}\n`;
    for (const c of this.clients) if (this.peers.has(c)) c.write(line);
  }

  /** Trays that have said hello and are still connected. */
  get trays(): number {
    let n = 0;
    for (const c of this.clients) if (this.peers.has(c) && !c.destroyed) n++;
    return n;
  }

  private accept(socket: Socket): void {
    this.clients.add(socket);
    let pending = '';
    let queue = Promise.resolve();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      pending += chunk;
      if (Buffer.byteLength(pending) > MAX_LINE_BYTES && !pending.includes('\n')) return this.refuse(socket, 'INV_ERR_INPUT_TOO_LARGE');
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim() === '') continue;
        queue = queue.then(() => this.onLine(socket, line));
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.clients.delete(socket);
      const peer = this.peers.get(socket);
      if (peer) this.options.onGone?.(peer);
    });
  }

  private async onLine(socket: Socket, line: string): Promise<void> {
    if (socket.destroyed) return;
    const decoded = decodeTrayToAgent(line, { maxBytes: MAX_LINE_BYTES, maxDepth: 8 });
    if (!decoded.ok) return this.refuse(socket, decoded.problems[0]?.code ?? 'INV_ERR_SCHEMA_INVALID');
    const message = decoded.value;
    const peer = this.peers.get(socket);
    if (!peer) {
      if (message.type !== 'tray.hello') return this.refuse(socket, 'INV_ERR_UNEXPECTED_MESSAGE');
      return this.greet(socket, message.sessionId);
    }
    switch (message.type) {
      case 'tray.hello':
        return;
      case 'tray.answer':
        return this.onAnswer(socket, message, peer);
      case 'tray.report':
        await this.options.onReport?.(message, peer).catch((e: unknown) => this.log.error('could not take a problem report', { error: String(e) }));
        return;
      case 'tray.idle':
        this.options.onIdle?.(message.idleSeconds, peer);
        return;
      default: {
        const unhandled: never = message;
        this.log.warn('unhandled tray message', { message: unhandled });
      }
    }
  }

  /** Hello: the session a tray names must be its own user's, as the OS lists them. */
  private async greet(socket: Socket, sessionId: string | undefined): Promise<void> {
    const uid = this.options.owner?.uid;
    const peer: TrayPeer = uid === undefined ? {} : { uid };
    if (sessionId !== undefined && uid !== undefined) {
      const verify = this.options.verifySession;
      const ok = verify ? await verify(uid, sessionId).catch(() => false) : false;
      if (!ok) {
        this.log.warn("a tray named a session that is not its user's; disconnected", { uid, code: 'INV_ERR_SESSION_UNKNOWN' });
        return this.refuse(socket, 'INV_ERR_SESSION_UNKNOWN');
      }
      peer.sessionId = sessionId;
    }
    if (socket.destroyed) return;
    this.peers.set(socket, peer);
    if (this.lastStatus) socket.write(`${encode(this.lastStatus)}\n`);
    for (const n of this.active.values()) socket.write(`${encode(n)}\n`);
    this.options.onHello?.(peer);
  }

  private async onAnswer(socket: Socket, answer: TrayAnswer, peer: TrayPeer): Promise<void> {
    if (answer.action === 'dismiss' && !answer.noticeId.startsWith('usb-')) return this.withdraw(answer.noticeId);
    const result = await this.options
      .onAnswer(answer, peer)
      .catch((e: unknown): AnswerResult => ({ ok: false, code: 'INV_ERR_INTERNAL', message: String(e).slice(0, 200) }));
    if (result.ok) return;
    // The person at the computer is told in plain words; the code is for whoever reads the logs.
    this.log.info('a notice answer was refused', { noticeId: answer.noticeId, action: answer.action, code: result.code });
    const line = `${encode({
      v: PROTOCOL_VERSION,
      type: 'tray.notice',
      noticeId: `answer-${answer.noticeId}`.slice(0, 128),
      kind: 'information',
      title: result.code.startsWith('INV_ERR_OFFLINE_CODE') ? 'That code did not work' : 'That did not work',
      body: `${ERRORS[result.code]}.`,
      actions: ['dismiss'],
    })}\n`;
    if (!socket.destroyed) socket.write(line);
  }

  /** A client that breaks the protocol is cut off; the tray reconnects and starts again with hello. */
  private refuse(socket: Socket, code: ErrorCode): void {
    if (socket.destroyed) return;
    this.log.warn('tray client broke the protocol; disconnected', { code });
    socket.destroy();
  }
}
