import { rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Recorder } from './core/events';

/**
 * The agent marks itself running in `<dataDir>/running` and removes the mark
 * on a clean stop. A mark found at start means the last run ended without
 * stopping: killed (AntiLanSchool-style tools, Task Manager, `kill -9`), or a
 * crash or power loss, which look the same from here. It is reported as
 * `agent.tamper` (target agent, action killed) with the pid that was
 * running, for the network manager to judge beside `device.silent`.
 */
export async function checkLastRun(dataDir: string, record: Recorder, now: () => Date = () => new Date()): Promise<boolean> {
  const mark = join(dataDir, 'running');
  const before = await readFile(mark, 'utf8').catch(() => undefined);
  await writeFile(mark, `${process.pid}\n`, { mode: 0o600 });
  if (before === undefined) return false;
  const pid = Number(before.trim());
  await record({
    type: 'agent.tamper',
    severity: 'warning',
    time: now().toISOString(),
    data: { target: 'agent', action: 'killed', ...(Number.isInteger(pid) && pid > 0 ? { process: { pid, name: 'invigilator agent' } } : {}) },
  });
  return true;
}

/** A clean stop: the next start finds no mark. */
export async function markStopped(dataDir: string): Promise<void> {
  await rm(join(dataDir, 'running'), { force: true });
}
