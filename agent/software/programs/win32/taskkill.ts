import type { CommandRunner } from '../../../os/command-runner';
import type { ProcessKiller } from '../process-killer';

/** `taskkill /F /PID n`: 0 is killed, 128 is "not found" (gone already). */
export async function taskkill(runner: CommandRunner, pid: number): Promise<'killed' | 'gone' | 'failed'> {
  const result = await runner.run('taskkill', ['/F', '/PID', String(pid)], 10_000).catch(() => undefined);
  if (!result) return 'failed';
  if (result.code === 0) return 'killed';
  if (result.code === 128) return 'gone';
  return 'failed';
}

/** Windows: `taskkill /F /PID n` (TerminateProcess), through the CommandRunner seam the OS adapters are tested with. */
export function taskkillKiller(runner: CommandRunner): ProcessKiller {
  return { kill: (p) => taskkill(runner, p.pid) };
}
