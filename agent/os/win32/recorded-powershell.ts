import { CommandError } from '../command-runner';
import { DEFAULT_MAX_OUTPUT_CHARS, type PowerShellSession } from './powershell-session';

/** What a recording answers: the text PowerShell printed, or the message of the error it threw. */
export type RecordedAnswer = string | { error: string };

/** Finds the recorded answer for a script; `undefined` when nothing was recorded for it. */
export type Recording = (script: string) => RecordedAnswer | undefined;

/**
 * A session that answers from recorded outputs instead of a process, so the
 * Windows adapter runs on any machine. It keeps every script it was given,
 * which is how a test learns what the adapter actually asked Windows to do.
 */
export class RecordedPowerShell implements PowerShellSession {
  readonly scripts: string[] = [];
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly recording: Recording,
    private readonly maxOutputChars = DEFAULT_MAX_OUTPUT_CHARS,
  ) {}

  run(script: string): Promise<string> {
    const result = this.queue.then(() => this.answer(script));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private answer(script: string): string {
    if (this.closed) throw new CommandError('INV_ERR_OS_COMMAND_NOT_STARTED', 'the PowerShell session is closed');
    this.scripts.push(script);
    const answer = this.recording(script);
    if (answer === undefined) throw new CommandError('INV_ERR_OS_COMMAND_NOT_STARTED', 'no recorded output answers this script');
    if (typeof answer !== 'string') throw new CommandError('INV_ERR_OS_COMMAND_FAILED', answer.error.slice(0, 500));
    if (answer.length > this.maxOutputChars) throw new CommandError('INV_ERR_OS_COMMAND_OVERFLOW', `more than ${this.maxOutputChars} characters of output`);
    return answer.trim();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
