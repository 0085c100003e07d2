import { type Socket, connect } from 'node:net';
import { type AgentToTray, PROTOCOL_VERSION, type TrayToAgent, decodeAgentToTray, encode } from '../../shared/protocol';

export type ConnectionStatus = 'connected' | 'disconnected';

/** The tray's view of its channel to the agent: what TrayApp needs, and what tests fake. */
export interface AgentConnection {
  readonly status: ConnectionStatus;
  start(): void;
  stop(): void;
  /** Sends one message; false when the agent is not connected (nothing is queued: the agent has the authority, not us). */
  send(message: TrayToAgent): boolean;
  onMessage(listener: (message: AgentToTray) => void): void;
  onStatus(listener: (status: ConnectionStatus) => void): void;
}

/** Timers, injectable so that tests can drive the reconnect backoff. */
export interface TimeoutTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_TIMEOUTS: TimeoutTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface AgentClientOptions {
  /** The agent's socket path, or a Windows named pipe (`\\.\pipe\...`). */
  path: string;
  /** Sent in tray.hello. */
  trayVersion: string;
  /** The OS session this tray runs in, sent in tray.hello; the agent checks it is the user's own. */
  sessionId?: string;
  timers?: TimeoutTimers;
  /** First reconnect delay, doubled on each failure up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Told about every line dropped (invalid, oversized), for the log. */
  onDropped?: (reason: string) => void;
}

/** One message per line; the agent's side uses the same cap. */
export const MAX_LINE_BYTES = 64 * 1024;

/**
 * The tray's end of the local channel: newline-delimited JSON over a Unix
 * socket or a named pipe. Says hello first on every connection; decodes every
 * line from the agent through the same untrusted-input boundary the agent
 * uses (a line that is not a valid message is dropped, and so is a line over
 * 64 KiB); reconnects with backoff while the agent is away.
 */
export class AgentClient implements AgentConnection {
  private socket: Socket | undefined;
  private current: ConnectionStatus = 'disconnected';
  private running = false;
  private retry: unknown;
  private backoffMs: number;
  private readonly timers: TimeoutTimers;
  private readonly messageListeners: Array<(message: AgentToTray) => void> = [];
  private readonly statusListeners: Array<(status: ConnectionStatus) => void> = [];

  constructor(private readonly options: AgentClientOptions) {
    this.timers = options.timers ?? REAL_TIMEOUTS;
    this.backoffMs = options.initialBackoffMs ?? 500;
  }

  get status(): ConnectionStatus {
    return this.current;
  }

  onMessage(listener: (message: AgentToTray) => void): void {
    this.messageListeners.push(listener);
  }

  onStatus(listener: (status: ConnectionStatus) => void): void {
    this.statusListeners.push(listener);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  stop(): void {
    this.running = false;
    if (this.retry !== undefined) this.timers.clearTimeout(this.retry);
    this.retry = undefined;
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
    this.setStatus('disconnected');
  }

  send(message: TrayToAgent): boolean {
    const socket = this.socket;
    if (this.current !== 'connected' || !socket || socket.destroyed) return false;
    socket.write(`${encode(message)}\n`);
    return true;
  }

  private connect(): void {
    this.retry = undefined;
    if (!this.running) return;
    const socket = connect(this.options.path);
    this.socket = socket;
    let pending = '';
    let discarding = false;
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      if (this.socket !== socket) return;
      this.backoffMs = this.options.initialBackoffMs ?? 500;
      const { trayVersion, sessionId } = this.options;
      socket.write(`${encode({ v: PROTOCOL_VERSION, type: 'tray.hello', trayVersion, ...(sessionId ? { sessionId } : {}) })}\n`);
      this.setStatus('connected');
    });
    socket.on('data', (chunk: string) => {
      if (this.socket !== socket) return;
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (discarding) {
          // The tail of an oversized line.
          discarding = false;
          continue;
        }
        this.onLine(line);
      }
      if (Buffer.byteLength(pending) > MAX_LINE_BYTES) {
        this.options.onDropped?.('INV_ERR_INPUT_TOO_LARGE');
        pending = '';
        discarding = true;
      }
    });
    // 'close' follows every error; that is where we reconnect.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.setStatus('disconnected');
      this.scheduleReconnect();
    });
  }

  private onLine(line: string): void {
    if (line.trim() === '') return;
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) return this.options.onDropped?.('INV_ERR_INPUT_TOO_LARGE');
    const decoded = decodeAgentToTray(line, { maxBytes: MAX_LINE_BYTES, maxDepth: 8 });
    if (!decoded.ok) return this.options.onDropped?.(decoded.problems[0]?.code ?? 'INV_ERR_SCHEMA_INVALID');
    for (const listener of this.messageListeners) listener(decoded.value);
  }

  private scheduleReconnect(): void {
    if (!this.running || this.retry !== undefined) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 30_000);
    this.retry = this.timers.setTimeout(() => this.connect(), delay);
  }

  private setStatus(status: ConnectionStatus): void {
    if (this.current === status) return;
    this.current = status;
    for (const listener of this.statusListeners) listener(status);
  }
}
