import type { Platform } from '../../../shared/protocol/primitives';
import { type CommandRunner, createExecFileRunner } from '../../os/command-runner';
import type { ObservedProcess } from './process-source';
import { taskkill } from './win32/process-source-win32';

export type KillResult = 'killed' | 'gone' | 'failed';

/** Ends one process at once. The guard has already checked it is still the process it decided about. */
export interface ProcessKiller {
  kill(process: ObservedProcess): Promise<KillResult>;
}

/**
 * Linux and macOS: SIGKILL, which a process can neither catch nor ignore. A
 * program told politely (SIGTERM) could use the moment to save what it was
 * sending, or to start again.
 */
export const signalKiller: ProcessKiller = {
  kill(p) {
    try {
      process.kill(p.pid, 'SIGKILL');
      return Promise.resolve('killed');
    } catch (e) {
      return Promise.resolve((e as NodeJS.ErrnoException).code === 'ESRCH' ? 'gone' : 'failed');
    }
  },
};

/** Windows: `taskkill /F /PID n` (TerminateProcess), through the CommandRunner seam the OS adapters are tested with. */
export function taskkillKiller(runner: CommandRunner): ProcessKiller {
  return { kill: (p) => taskkill(runner, p.pid) };
}

export function defaultKiller(platform: Platform): ProcessKiller {
  return platform === 'win32' ? taskkillKiller(createExecFileRunner({ defaultTimeoutMs: 10_000 })) : signalKiller;
}
