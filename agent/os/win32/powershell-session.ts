import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CommandError } from '../command-runner';

/**
 * One PowerShell kept running for the agent's life. Starting powershell.exe
 * costs from half a second to several seconds (systeminformation issues #650
 * and #788), far too slow for a poll every two seconds, so every query and
 * action goes through one process, one script at a time. The composition root
 * builds one (agent/os/plumbing.ts) and hands it to every adapter that asks
 * Windows something: USB, the check before a kill, signers, the inventory.
 * (The process watch is a second, streaming PowerShell of its own: a script
 * that never ends would hold this one.)
 */
export interface PowerShellSession {
  /** Runs `script` and resolves with what it printed, trimmed; rejects with a CommandError (INV_ERR_OS_COMMAND_*). */
  run(script: string, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

export const POWERSHELL_COMMAND = 'powershell.exe';
export const POWERSHELL_ARGS: readonly string[] = ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-Command', '-'];

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_OUTPUT_CHARS = 4 * 1024 * 1024;
const MAX_SCRIPT_CHARS = 256 * 1024;
const STDERR_TAIL_CHARS = 2048;

/**
 * Sent once after start: UTF-8 out, so device names outside the OEM code page
 * survive; no progress records, which PowerShell would otherwise render into
 * the redirected streams.
 */
export const SESSION_PRELUDE = "[Console]::OutputEncoding = [Text.Encoding]::UTF8; $ProgressPreference = 'SilentlyContinue'";

export function newMarker(): string {
  return `__INV_END_${randomBytes(16).toString('hex')}__`;
}

/**
 * One line of input for `-Command -`. PowerShell reads that stream line by
 * line, and a multi-line script would be cut at the first line that looks
 * complete, so the script travels base64-encoded and is rebuilt as a script
 * block. Its output is collected first and printed whole, then a line with the
 * marker and `ok`, or the marker and `err:` with the error message as JSON.
 */
export function frameScript(script: string, marker: string): string {
  const payload = Buffer.from(script, 'utf8').toString('base64');
  return (
    `$ErrorActionPreference = 'Stop'; try { ` +
    `$__inv = (& ([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('${payload}')))) | Out-String); ` +
    `[Console]::Out.Write($__inv); [Console]::Out.Write("\`n" + '${marker}' + ":ok\`n") ` +
    `} catch { [Console]::Out.Write("\`n" + '${marker}' + ':err:' + (ConvertTo-Json -Compress -InputObject ([string]$_.Exception.Message)) + "\`n") }; ` +
    `[Console]::Out.Flush()`
  );
}

export type FramedResult = { kind: 'pending' } | { kind: 'ok'; output: string } | { kind: 'err'; message: string };

/** Looks for the end of one framed answer in what stdout has printed so far. */
export function readFramed(buffer: string, marker: string): FramedResult {
  const start = buffer.indexOf(`\n${marker}:`);
  if (start < 0) return { kind: 'pending' };
  const end = buffer.indexOf('\n', start + 1);
  if (end < 0) return { kind: 'pending' };
  const status = buffer.slice(start + marker.length + 2, end).replace(/\r$/, '');
  const output = buffer.slice(0, start).trim();
  if (status === 'ok') return { kind: 'ok', output };
  if (status.startsWith('err:')) {
    let message: unknown;
    try {
      message = JSON.parse(status.slice(4));
    } catch {
      message = undefined;
    }
    return { kind: 'err', message: typeof message === 'string' ? cleanMessage(message) : 'unreadable error' };
  }
  return { kind: 'err', message: 'unexpected status after the end marker' };
}

/** Error text from PowerShell can quote device strings: keep it short and printable for the log. */
function cleanMessage(message: string): string {
  // eslint-disable-next-line no-control-regex
  return message.replace(/[\u0000-\u001f\u007f-\u009f\u2028-\u202e]/g, ' ').slice(0, 500);
}

export interface ProcessSessionOptions {
  command?: string;
  args?: readonly string[];
  timeoutMs?: number;
  maxOutputChars?: number;
}

interface Pending {
  marker: string;
  resolve: (output: string) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** The real session: a child process fed framed scripts on stdin; restarted on the next call if it dies. */
export class ProcessPowerShellSession implements PowerShellSession {
  private readonly command: string;
  private readonly args: readonly string[];
  private readonly timeoutMs: number;
  private readonly maxOutputChars: number;
  private child: ChildProcessWithoutNullStreams | undefined;
  private buffer = '';
  private stderrTail = '';
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(options: ProcessSessionOptions = {}) {
    this.command = options.command ?? POWERSHELL_COMMAND;
    this.args = options.args ?? POWERSHELL_ARGS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxOutputChars = options.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS;
  }

  /** The process id serving calls now, if one is running (for tests and logs). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  run(script: string, timeoutMs = this.timeoutMs): Promise<string> {
    // One script at a time: the framing has no way to tell two answers apart.
    const result = this.queue.then(() => this.runNow(script, timeoutMs));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private runNow(script: string, timeoutMs: number): Promise<string> {
    if (this.closed) return Promise.reject(new CommandError('INV_ERR_OS_COMMAND_NOT_STARTED', 'the PowerShell session is closed'));
    if (script.length > MAX_SCRIPT_CHARS) return Promise.reject(new CommandError('INV_ERR_OS_COMMAND_NOT_STARTED', 'script too long'));
    let child: ChildProcessWithoutNullStreams;
    try {
      child = this.ensureChild();
    } catch (e) {
      return Promise.reject(new CommandError('INV_ERR_OS_COMMAND_NOT_STARTED', `cannot start PowerShell: ${(e as Error).message}`));
    }
    const marker = newMarker();
    this.buffer = '';
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => this.settle(new CommandError('INV_ERR_OS_COMMAND_TIMEOUT', `no answer within ${timeoutMs} ms`), true), timeoutMs);
      this.pending = { marker, resolve, reject, timer };
      child.stdin.write(`${frameScript(script, marker)}\n`, (err) => {
        if (err) this.settle(new CommandError('INV_ERR_OS_COMMAND_FAILED', `cannot write to PowerShell: ${err.message}`), true);
      });
    });
  }

  private ensureChild(): ChildProcessWithoutNullStreams {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return this.child;
    const child = spawn(this.command, [...this.args], { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    this.child = child;
    this.stderrTail = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (child === this.child) this.onStdout(chunk);
    });
    child.stderr.on('data', (chunk: string) => {
      if (child === this.child) this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
    });
    // A dead process makes writes fail with EPIPE; the exit handler reports it.
    child.stdin.on('error', () => undefined);
    child.on('error', (err) => {
      if (child !== this.child) return;
      this.child = undefined;
      this.settle(new CommandError('INV_ERR_OS_COMMAND_NOT_STARTED', `PowerShell failed: ${err.message}`), false);
    });
    child.on('exit', (code, signal) => {
      if (child !== this.child) return;
      this.child = undefined;
      const tail = cleanMessage(this.stderrTail.trim());
      const detail = `PowerShell exited (${signal ?? code})${tail ? `: ${tail}` : ''}`;
      this.settle(new CommandError(signal ? 'INV_ERR_OS_COMMAND_KILLED' : 'INV_ERR_OS_COMMAND_FAILED', detail), false);
    });
    child.stdin.write(`${SESSION_PRELUDE}\n`);
    return child;
  }

  private onStdout(chunk: string): void {
    const pending = this.pending;
    // Output between calls belongs to no one.
    if (!pending) return;
    this.buffer += chunk;
    if (this.buffer.length > this.maxOutputChars) {
      this.settle(new CommandError('INV_ERR_OS_COMMAND_OVERFLOW', `more than ${this.maxOutputChars} characters of output`), true);
      return;
    }
    const framed = readFramed(this.buffer, pending.marker);
    if (framed.kind === 'pending') return;
    this.buffer = '';
    if (framed.kind === 'ok') this.settle(framed.output, false);
    else this.settle(new CommandError('INV_ERR_OS_COMMAND_FAILED', framed.message), false);
  }

  /** Ends the current call; `kill` when the process is in an unknown state (timed out, flooding) and must not serve the next one. */
  private settle(result: string | Error, kill: boolean): void {
    const pending = this.pending;
    this.pending = undefined;
    this.buffer = '';
    if (kill && this.child) {
      const child = this.child;
      this.child = undefined;
      child.kill();
    }
    if (!pending) return;
    clearTimeout(pending.timer);
    if (typeof result === 'string') pending.resolve(result);
    else pending.reject(result);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.settle(new CommandError('INV_ERR_OS_COMMAND_KILLED', 'the PowerShell session was closed'), false);
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.kill();
        resolve();
      }, 2000);
      timer.unref();
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.stdin.end();
    });
  }
}

/** The session the agent uses on Windows. The process starts with the first call. */
export function spawnPowerShellSession(options: ProcessSessionOptions = {}): ProcessPowerShellSession {
  return new ProcessPowerShellSession(options);
}
