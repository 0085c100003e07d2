import type { Socket } from 'node:net';

/**
 * A client for QEMU's machine protocol (QMP) on a socket QEMU connected to.
 * QMP rather than the human monitor: every reply is a JSON object matched to
 * its request by id, errors are explicit, and device removal is confirmed by
 * a DEVICE_DELETED event instead of by guessing.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type QmpArgs = Record<string, Json>;

interface Pending {
  resolve: (value: Json) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

interface EventWaiter {
  match: (event: QmpEvent) => boolean;
  resolve: () => void;
}

export interface QmpEvent {
  event: string;
  data?: Record<string, Json>;
}

/** A QMP line is small; anything beyond this is not QMP. */
const MAX_BUFFER = 1 << 20;

export class Qmp {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly waiters = new Set<EventWaiter>();
  /** Events seen recently, so an event that arrives before its waiter is not missed. */
  private readonly recent: QmpEvent[] = [];
  private greeted: (() => void) | undefined;
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.fail(new Error('QMP connection closed (QEMU exited?)')));
    socket.on('error', (e) => this.fail(e));
  }

  /** Waits for QEMU's greeting and leaves capabilities negotiation, as QMP requires before any command. */
  static async open(socket: Socket, timeoutMs: number): Promise<Qmp> {
    const qmp = new Qmp(socket);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no QMP greeting from QEMU')), timeoutMs);
      qmp.greeted = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    await qmp.execute('qmp_capabilities', {}, timeoutMs);
    return qmp;
  }

  execute(command: string, args: QmpArgs = {}, timeoutMs = 10_000): Promise<Json> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = `q${this.nextId++}`;
    return new Promise<Json>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${command} got no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(`${JSON.stringify({ execute: command, arguments: args, id })}\n`);
    });
  }

  /** Runs a human-monitor command (drive_add has no QMP twin that keeps snapshot=on); its text output is its error, if any. */
  async human(commandLine: string, timeoutMs = 10_000): Promise<string> {
    const out = await this.execute('human-monitor-command', { 'command-line': commandLine }, timeoutMs);
    return typeof out === 'string' ? out : '';
  }

  /** True when an event matching `match` arrives (or is among the recent ones), false on timeout. */
  waitForEvent(match: (event: QmpEvent) => boolean, timeoutMs: number): Promise<boolean> {
    if (this.recent.some(match)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const waiter: EventWaiter = {
        match,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        resolve(false);
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Forgets remembered events that match, so a later wait sees only new ones. */
  forgetEvents(match: (event: QmpEvent) => boolean): void {
    const keep = this.recent.filter((e) => !match(e));
    this.recent.splice(0, this.recent.length, ...keep);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > MAX_BUFFER) {
      this.fail(new Error('QMP sent an over-long line'));
      return;
    }
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let message: Record<string, Json>;
    try {
      message = JSON.parse(line) as Record<string, Json>;
    } catch {
      return;
    }
    if ('QMP' in message) {
      this.greeted?.();
      return;
    }
    if (typeof message.event === 'string') {
      const event: QmpEvent = { event: message.event, data: (message.data as Record<string, Json> | undefined) ?? {} };
      this.recent.push(event);
      if (this.recent.length > 100) this.recent.shift();
      for (const w of [...this.waiters]) if (w.match(event)) w.resolve();
      return;
    }
    const id = typeof message.id === 'string' ? message.id : undefined;
    const pending = id ? this.pending.get(id) : undefined;
    if (!id || !pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    const error = message.error as { desc?: string } | undefined;
    if (error) pending.reject(new Error(`QMP: ${error.desc ?? JSON.stringify(error)}`));
    else pending.resolve(message.return ?? null);
  }

  private fail(error: Error): void {
    this.closedError ??= error;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(error);
      this.pending.delete(id);
    }
  }
}
