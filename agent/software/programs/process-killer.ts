import type { ObservedProcess } from './process-source';

export type KillResult = 'killed' | 'gone' | 'failed';

/** Ends one process at once. The guard has already checked it is still the process it decided about. One per OS, chosen by cli/software-for.ts. */
export interface ProcessKiller {
  kill(process: ObservedProcess): Promise<KillResult>;
}

/**
 * Linux and macOS: SIGKILL, which a process can neither catch nor ignore. A
 * program told politely (SIGTERM) could use the moment to save what it was
 * sending, or to start again. (Windows: win32/taskkill.ts.)
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
