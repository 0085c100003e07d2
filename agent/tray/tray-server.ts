import { chmod, chown, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { type Server, type Socket, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { ERRORS, type ErrorCode } from '../../shared/errors';
import type { ReportOutcome, TrayNotice, TrayReport, TrayStatus, TrayToAgent } from '../../shared/protocol';
import { decodeTrayToAgent, encode } from '../../shared/protocol/agent-codec';
import { PROTOCOL_VERSION } from '../../shared/protocol/primitives';
import type { Logger } from '../../node-common/logging';
import type { AnswerResult, NoticeSink, TrayPeer } from '../core/notices';

type TrayAnswer = Extract<TrayToAgent, { type: 'tray.answer' }>;
/** What became of a report, and words for the tray that sent it alone (a refusal), if any. */
export interface ReportResult {
  outcome: ReportOutcome;
  notice?: TrayNotice;
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
  /**
   * "Report a problem" from the person at the computer. Resolves once the
   * report is durably recorded (or counted); only then is it acknowledged. A
   * rejection leaves it unacknowledged, and the tray sends it again.
   */
  onReport?: (report: TrayReport, from: TrayPeer) => Promise<ReportResult>;
  maxClients?: number;
}

/** A frame is one JSON message per line; nothing a tray sends is larger. */
const MAX_LINE_BYTES = 64 * 1024;
/** Notices kept for a tray that connects later (a user who logs in after a stick was blocked). */
const MAX_ACTIVE_NOTICES = 50;
/** Report ids remembered, so that a report sent again (its ack was lost with the connection) is recorded once. */
const REMEMBERED_REPORTS = 2_000;
/** Lines read but not yet handled on one connection; past this the socket is paused until they are. */
const MAX_QUEUED_LINES = 1_000;
/** How long closing waits for reports already read to be recorded. */
const CLOSE_WAIT_MS = 2_000;

/** One tray connection: the lines read from it are handled in order, all of them, even after it has closed. */
interface Connection {
  readonly socket: Socket;
  peer?: TrayPeer;
  lines: string[];
  draining: boolean;
  /** The client broke the protocol: nothing more it sent counts. */
  refused: boolean;
}

/**
 * The agent's end of the local channel to the tray: one JSON message per
 * line, each decoded through the same untrusted-input boundary as everything
 * else. A server listens on one socket: a user's own (see UserTrays), or the
 * root-only one for administrators' tools. Who a tray speaks for is the
 * socket's owner, never a field of a message.
 */
export class TrayServer implements NoticeSink {
  private server: Server | undefined;
  /** Where the socket was renamed to, and which file it is: closing removes it only if it is still ours. */
  private placed: { path: string; ino: number } | undefined;
  private readonly clients = new Set<Socket>();
  /** Reports by id, recorded or being recorded, the oldest forgotten first. */
  private readonly reports = new Map<string, Promise<ReportResult>>();
  /** Reports being recorded now. */
  private readonly inflight = new Set<Promise<unknown>>();
  /** Connections that have said hello, and who they are. */
  private readonly peers = new WeakMap<Socket, TrayPeer>();
  private readonly active = new Map<string, TrayNotice>();
  private lastStatus: TrayStatus | undefined;
  private readonly log: Logger;

  constructor(private readonly options: TrayServerOptions) {
    this.log = options.logger.child({ component: 'tray-server' });
  }

  /**
   * On Unix the socket is bound inside a fresh folder only root can enter
   * (0700), given its mode and owner there, and only then renamed into place:
   * it is never at its path with the wrong mode or owner, whatever the umask.
   * (Bound in place and then chmod-ed, another user got in under umask 000.)
   * The rename also replaces a socket left by a crashed agent.
   */
  async listen(): Promise<void> {
    const { path } = this.options;
    const server = createServer((socket) => this.accept(socket));
    server.maxConnections = this.options.maxClients ?? 16;
    if (path.startsWith('\\\\')) {
      await listenOn(server, path);
    } else {
      const staging = await mkdtemp(join(dirname(path), '.t'));
      try {
        const bound = join(staging, 's');
        await listenOn(server, bound);
        await chmod(bound, 0o600);
        if (this.options.owner) await chown(bound, this.options.owner.uid, this.options.owner.gid);
        await rename(bound, path);
        this.placed = { path, ino: (await stat(path)).ino };
      } catch (e) {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        throw e;
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    }
    server.on('error', (e) => this.log.error('tray channel failed', { error: e.message }));
    this.server = server;
  }

  /** Stops listening, ends every connection, and waits (a little) for the reports already read to be recorded. */
  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    this.clients.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    // The socket was renamed from where it was bound, so closing the server does not remove it.
    const placed = this.placed;
    this.placed = undefined;
    if (placed && (await stat(placed.path).catch(() => undefined))?.ino === placed.ino) await rm(placed.path, { force: true });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inflight]), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS).unref()))]);
    clearTimeout(timer);
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
    const conn: Connection = { socket, lines: [], draining: false, refused: false };
    let pending = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim() !== '') conn.lines.push(line);
      }
      if (Buffer.byteLength(pending) > MAX_LINE_BYTES) {
        // The lines before this one were read and still count; this one and anything after do not.
        conn.lines.push('');
        pending = '';
        socket.destroy();
      }
      if (conn.lines.length >= MAX_QUEUED_LINES) socket.pause();
      void this.drain(conn);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.clients.delete(socket);
      if (conn.peer) this.options.onGone?.(conn.peer);
    });
  }

  /**
   * Handles a connection's lines one after another, to the last one read,
   * whether or not the tray is still there: a line the agent has read is the
   * agent's to keep. An empty line stands for one too large to read.
   */
  private async drain(conn: Connection): Promise<void> {
    if (conn.draining) return;
    conn.draining = true;
    try {
      for (let line = conn.lines.shift(); line !== undefined && !conn.refused; line = conn.lines.shift()) {
        if (line === '') this.refuse(conn, 'INV_ERR_INPUT_TOO_LARGE');
        else await this.onLine(conn, line);
        if (conn.lines.length < MAX_QUEUED_LINES / 2 && conn.socket.isPaused() && !conn.socket.destroyed) conn.socket.resume();
      }
    } catch (e) {
      this.log.error('a tray message could not be handled', { error: String(e) });
    } finally {
      conn.draining = false;
    }
    if (conn.lines.length > 0 && !conn.refused) void this.drain(conn);
  }

  private async onLine(conn: Connection, line: string): Promise<void> {
    const decoded = decodeTrayToAgent(line, { maxBytes: MAX_LINE_BYTES, maxDepth: 8 });
    if (!decoded.ok) return this.refuse(conn, decoded.problems[0]?.code ?? 'INV_ERR_SCHEMA_INVALID');
    const message = decoded.value;
    const peer = conn.peer;
    if (!peer) {
      if (message.type !== 'tray.hello') return this.refuse(conn, 'INV_ERR_UNEXPECTED_MESSAGE');
      return this.greet(conn, message.sessionId);
    }
    switch (message.type) {
      case 'tray.hello':
        return;
      case 'tray.answer':
        return this.onAnswer(conn.socket, message, peer);
      case 'tray.report':
        // Not awaited: the next report is taken while this one is written, so reports share the outbox's write and sync.
        return this.onReport(conn.socket, message, peer);
      case 'tray.idle':
        this.options.onIdle?.(message.idleSeconds, peer);
        return;
      default: {
        const unhandled: never = message;
        this.log.warn('unhandled tray message', { message: unhandled });
      }
    }
  }

  /**
   * Records a report (or finds it recorded already, when it comes again under
   * the same id), and acknowledges it once that is done: the tray keeps and
   * resends a report until it sees the ack.
   */
  private onReport(socket: Socket, report: TrayReport, peer: TrayPeer): void {
    const take = this.options.onReport;
    if (!take) {
      this.log.warn('a problem report arrived where nothing takes them; not acknowledged');
      return;
    }
    const key = report.reportId === undefined ? undefined : `${peer.uid ?? 'root'}/${report.reportId}`;
    const known = key === undefined ? undefined : this.reports.get(key);
    let result: Promise<ReportResult>;
    try {
      result = known ?? take(report, peer);
    } catch (e) {
      result = Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    if (key !== undefined && !known) {
      this.reports.set(key, result);
      while (this.reports.size > REMEMBERED_REPORTS) this.reports.delete(this.reports.keys().next().value!);
      // One that failed is forgotten, so that the tray's resend is tried afresh.
      result.catch(() => this.reports.get(key) === result && this.reports.delete(key));
    }
    const done = result.then(
      ({ outcome, notice }) => {
        if (socket.destroyed) return;
        if (report.reportId !== undefined) socket.write(`${encode({ v: PROTOCOL_VERSION, type: 'tray.report.ack', reportId: report.reportId, outcome })}\n`);
        if (notice && !known) socket.write(`${encode(notice)}\n`);
      },
      (e: unknown) => this.log.error('could not take a problem report; the tray will send it again', { error: String(e) }),
    );
    this.inflight.add(done);
    void done.finally(() => this.inflight.delete(done));
  }
  /**
   * Hello: the session a tray names must be its own user's, as the OS lists
   * them. A tray already gone by now still gets its peer, so that what it sent
   * after hello counts as its own; it is just not greeted.
   */
  private async greet(conn: Connection, sessionId: string | undefined): Promise<void> {
    const uid = this.options.owner?.uid;
    const peer: TrayPeer = uid === undefined ? {} : { uid };
    if (sessionId !== undefined && uid !== undefined) {
      const verify = this.options.verifySession;
      const ok = verify ? await verify(uid, sessionId).catch(() => false) : false;
      if (!ok) {
        this.log.warn("a tray named a session that is not its user's; disconnected", { uid, code: 'INV_ERR_SESSION_UNKNOWN' });
        return this.refuse(conn, 'INV_ERR_SESSION_UNKNOWN');
      }
      peer.sessionId = sessionId;
    }
    conn.peer = peer;
    const { socket } = conn;
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
      title: refusalTitle(result.code),
      body: `${ERRORS[result.code]}.`,
      actions: ['dismiss'],
    })}\n`;
    if (!socket.destroyed) socket.write(line);
  }

  /** A client that breaks the protocol is cut off; the tray reconnects and starts again with hello. */
  private refuse(conn: Connection, code: ErrorCode): void {
    if (conn.refused) return;
    conn.refused = true;
    conn.lines.length = 0;
    this.log.warn('tray client broke the protocol; disconnected', { code });
    conn.socket.destroy();
  }
}

function listenOn(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The heading of a refused answer's notice; the body is the catalogue's sentence. */
function refusalTitle(code: ErrorCode): string {
  if (code.startsWith('INV_ERR_OFFLINE_CODE')) return 'That code did not work';
  if (code === 'INV_ERR_PERMISSION_REQUESTS_FULL') return 'Please wait for an answer';
  return 'That did not work';
}
