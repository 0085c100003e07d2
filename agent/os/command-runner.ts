import { execFile } from 'node:child_process';
import { InvigilatorError } from '../../shared/errors';

/** What a finished command printed and how it exited. A non-zero exit is an answer, not an error: callers decide. */
export interface CommandResult {
  stdout: string;
  code: number;
}

/**
 * Runs one operating-system program with an argument array. The seam every OS
 * adapter is tested through: the real one below, and RecordedCommands, which
 * answers from recorded outputs.
 */
export interface CommandRunner {
  run(file: string, args: string[], timeoutMs?: number): Promise<CommandResult>;
}

export interface ExecFileRunnerOptions {
  /** Output beyond this many bytes fails the command rather than growing without bound. */
  maxOutputBytes?: number;
  defaultTimeoutMs?: number;
}

/** `ioreg -a` on a Mac with a full hub runs to a few MB; diskutil to a few KB. */
export const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
/** `diskutil eject` on a slow stick can take several seconds; nothing we run should take longer than this. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

/** The ways a program can give no answer, each its own code so a log or an event says which. */
export type CommandErrorCode =
  'INV_ERR_OS_COMMAND_NOT_STARTED' | 'INV_ERR_OS_COMMAND_TIMEOUT' | 'INV_ERR_OS_COMMAND_OVERFLOW' | 'INV_ERR_OS_COMMAND_KILLED' | 'INV_ERR_OS_COMMAND_FAILED';

/**
 * A program (or a PowerShell script) that gave no answer. `detail` names the
 * program and what happened and never quotes its output, which can hold a
 * device's or a user's own strings. A capability whose events have always
 * carried a code of its own (USB) translates it, keeping `detail`.
 */
export class CommandError extends InvigilatorError {
  declare readonly code: CommandErrorCode;

  constructor(
    code: CommandErrorCode,
    readonly detail: string,
  ) {
    super(code, detail);
  }
}

/** `${file}: ${reason}`, the detail every runner gives. */
export function commandError(code: CommandErrorCode, file: string, reason: string): CommandError {
  return new CommandError(code, `${file}: ${reason}`);
}

/**
 * The real runner: execFile, so no shell ever sees an argument; a timeout that
 * kills the child; a cap on output; and each way of not finishing turned into
 * its own INV_ERR_OS_COMMAND_* code.
 */
export function createExecFileRunner(options: ExecFileRunnerOptions = {}): CommandRunner {
  const maxBuffer = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const defaultTimeout = options.defaultTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  return {
    run(file, args, timeoutMs = defaultTimeout) {
      return new Promise((resolve, reject) => {
        execFile(file, args, { encoding: 'utf8', maxBuffer, timeout: timeoutMs, killSignal: 'SIGKILL', shell: false, windowsHide: true }, (error, stdout) => {
          if (!error) return resolve({ stdout, code: 0 });
          const e = error as NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: NodeJS.Signals | null };
          // Node kills a child that overflows too (killed is then set): the overflow is what happened.
          if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER')
            return reject(commandError('INV_ERR_OS_COMMAND_OVERFLOW', file, `printed more than ${maxBuffer} bytes`));
          if (e.killed) return reject(commandError('INV_ERR_OS_COMMAND_TIMEOUT', file, `did not finish within ${timeoutMs} ms`));
          if (e.signal) return reject(commandError('INV_ERR_OS_COMMAND_KILLED', file, `killed by ${e.signal}`));
          if (typeof e.code === 'number') return resolve({ stdout, code: e.code });
          reject(commandError('INV_ERR_OS_COMMAND_NOT_STARTED', file, typeof e.code === 'string' ? e.code : 'could not be started'));
        });
      });
    },
  };
}
