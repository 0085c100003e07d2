import { type CommandResult, type CommandRunner, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_MAX_OUTPUT_BYTES, commandError } from './command-runner';

/** One recorded answer: what the program printed and its exit code, or that it never finished, was not there, or was killed. */
export type RecordedAnswer = { stdout?: string; code?: number } | { hangs: true } | { missing: true } | { signal: NodeJS.Signals };

export type Responder = (file: string, args: readonly string[]) => RecordedAnswer | undefined;

export interface RecordedCall {
  file: string;
  args: string[];
}

/**
 * A CommandRunner that answers from recorded outputs instead of running
 * anything, and remembers every call, so a test can check both what the
 * adapter concluded and exactly which commands it would have run. It fails
 * the way the real runner does (same codes) for a program that is missing (or
 * has no recording: it would not have run on that machine either), one that
 * hangs past its timeout, one killed by a signal, and one that prints too much.
 */
export class RecordedCommands implements CommandRunner {
  readonly calls: RecordedCall[] = [];
  private readonly fixed = new Map<string, RecordedAnswer>();
  private readonly responders: Responder[] = [];

  constructor(private readonly maxOutputBytes = DEFAULT_MAX_OUTPUT_BYTES) {}

  /** Answers exactly this command line. */
  record(file: string, args: readonly string[], answer: RecordedAnswer): this {
    this.fixed.set(RecordedCommands.line(file, args), answer);
    return this;
  }

  /** Answers by a function, for outputs that depend on the simulated machine's state. */
  respond(responder: Responder): this {
    this.responders.push(responder);
    return this;
  }

  async run(file: string, args: string[], timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<CommandResult> {
    this.calls.push({ file, args: [...args] });
    const answer = this.fixed.get(RecordedCommands.line(file, args)) ?? this.responders.map((r) => r(file, args)).find((a) => a !== undefined);
    await Promise.resolve();
    if (answer === undefined) throw commandError('INV_ERR_OS_COMMAND_NOT_STARTED', file, 'no recording for this command line');
    if ('missing' in answer) throw commandError('INV_ERR_OS_COMMAND_NOT_STARTED', file, 'ENOENT');
    if ('hangs' in answer) throw commandError('INV_ERR_OS_COMMAND_TIMEOUT', file, `did not finish within ${timeoutMs} ms`);
    if ('signal' in answer) throw commandError('INV_ERR_OS_COMMAND_KILLED', file, `killed by ${answer.signal}`);
    const stdout = answer.stdout ?? '';
    if (Buffer.byteLength(stdout, 'utf8') > this.maxOutputBytes) {
      throw commandError('INV_ERR_OS_COMMAND_OVERFLOW', file, `printed more than ${this.maxOutputBytes} bytes`);
    }
    return { stdout, code: answer.code ?? 0 };
  }

  static line(file: string, args: readonly string[]): string {
    return [file, ...args].join('\u0000');
  }
}
