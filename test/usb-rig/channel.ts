import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';

/**
 * The host end of the guest's command channel (the virtio-serial port that
 * /init serves; see init.sh for the guest end). One command at a time: each
 * request carries a fresh random id, and the reply is taken from between that
 * id's begin and end markers, so output left over from a command that timed
 * out can never be mistaken for the next command's.
 */

export interface RunResult {
  code: number;
  output: string;
}

/** The guest cuts output at 1 MiB; the host keeps a little more than that, and drops older bytes. */
const MAX_BUFFER = 4 << 20;
/** What the host allows beyond the guest's own `timeout`, for the channel round trip under emulation. */
const HOST_SLACK_MS = 10_000;

export class CommandChannel {
  private buffer = '';
  private queue: Promise<unknown> = Promise.resolve();
  private onChange: (() => void) | undefined;
  private closedError: Error | undefined;

  constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      if (this.buffer.length > MAX_BUFFER) this.buffer = this.buffer.slice(-MAX_BUFFER);
      this.onChange?.();
    });
    const closed = (): void => {
      this.closedError ??= new Error('the guest command channel closed (QEMU exited?)');
      this.onChange?.();
    };
    socket.on('close', closed);
    socket.on('error', closed);
  }

  /** Waits for the line /init writes once udev has settled; returns the rest of that line (the kernel release). */
  async ready(timeoutMs: number): Promise<string> {
    const m = await this.waitFor(/__RIG_READY__ ([^\n]*)\n/, timeoutMs, 'the guest to boot');
    return m[1] ?? '';
  }

  /** Runs a shell script in the guest (stdin /dev/null, stdout and stderr together). Rejects on timeout. */
  run(script: string, timeoutMs = 60_000): Promise<RunResult> {
    const next = this.queue.then(() => this.runNow(script, timeoutMs));
    // The queue must go on after a failure; the caller sees the failure through `next`.
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.socket.destroy();
  }

  private async runNow(script: string, timeoutMs: number): Promise<RunResult> {
    const id = randomBytes(8).toString('hex');
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    const started = Date.now();
    this.socket.write(`${id} ${seconds} ${Buffer.from(script).toString('base64')}\n`);
    const m = await this.waitFor(
      new RegExp(`__RIG_BEGIN_${id}__\\n([\\s\\S]*?)\\n__RIG_END_${id}_(\\d+)__\\n`),
      seconds * 1000 + HOST_SLACK_MS,
      `the guest to run: ${script.slice(0, 200)}`,
    );
    const code = Number(m[2]);
    // busybox timeout kills with SIGKILL: exit 137 at the deadline is the guest-side timeout.
    if (code === 137 && Date.now() - started >= seconds * 1000 - 500) {
      throw new Error(`guest command timed out after ${seconds} s: ${script.slice(0, 200)}\n${m[1] ?? ''}`);
    }
    return { code, output: m[1] ?? '' };
  }

  /** Resolves with the first match in the buffer, consuming the buffer up to its end. Bounded by timeoutMs. */
  private waitFor(pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
    return new Promise<RegExpExecArray>((resolve, reject) => {
      const finish = (error?: Error, match?: RegExpExecArray): void => {
        clearTimeout(timer);
        this.onChange = undefined;
        if (match) resolve(match);
        else reject(error ?? new Error('unreachable'));
      };
      const check = (): void => {
        const m = pattern.exec(this.buffer);
        if (m) {
          this.buffer = this.buffer.slice(m.index + m[0].length);
          finish(undefined, m);
        } else if (this.closedError) {
          finish(this.closedError);
        }
      };
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      this.onChange = check;
      check();
    });
  }
}
