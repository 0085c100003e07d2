import { execFile } from 'node:child_process';
import { InvigilatorError } from '../../shared/errors';

/** What a finished command printed and how it exited. A non-zero exit is an answer, not an error: callers decide. */
export interface CommandResult {
  stdout: string;
  code: number;
}

/**
 * Runs one operating-system program with an argument array. The seam the OS
 * adapters are tested through: the real one below, and RecordedCommands, which
 * answers from outputs recorded on a Mac.
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

function failed(file: string, reason: string): InvigilatorError {
  return new InvigilatorError('INV_ERR_USB_OS_COMMAND_FAILED', `${file}: ${reason}`);
}

/**
 * The real runner: execFile, so no shell ever sees an argument; a timeout that
 * kills the child; a cap on output; and every way of not finishing turned into
 * INV_ERR_USB_OS_COMMAND_FAILED. Output is never put into an error message,
 * because it can hold a device's own strings.
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
          if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return reject(failed(file, `printed more than ${maxBuffer} bytes`));
          if (e.killed || e.signal) return reject(failed(file, e.killed ? `did not finish within ${timeoutMs} ms` : `killed by ${e.signal}`));
          if (typeof e.code === 'number') return resolve({ stdout, code: e.code });
          reject(failed(file, typeof e.code === 'string' ? e.code : 'could not be started'));
        });
      });
    },
  };
}
