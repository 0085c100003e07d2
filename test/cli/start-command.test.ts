import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { childProcesses, eventually, startCli, stillRunning, tempDir } from '../support/cli';

type Listed = { online: boolean; hostname: string; approval: string };

async function devices(url: string, token: string): Promise<Listed[]> {
  const res = await fetch(`${url}/api/devices`, { headers: { authorization: `Bearer ${token}` } });
  return ((await res.json()) as { devices: Listed[] }).devices;
}

/** Start-up of three node processes on a busy machine takes seconds; these bound a hung start, not a slow one. */
const READY_WITHIN_MS = 30_000;
const READY = /Invigilator is running\.\n {2}Collector: (http:\/\/127\.0\.0\.1:\d+)\n/;

describe('invigilator start (what npm start runs)', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    'starts a collector and an enrolled agent, prints the address, and stops both on %s with exit 0',
    async (signal) => {
      const dataDir = tempDir('start');
      const run = startCli(['start', '--data-dir', dataDir, '--port', '0']);

      const [, url] = await run.printed(READY, READY_WITHIN_MS);
      const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
      // The ready line is printed as the agent is forked; it enrols and connects after that. 600 polls 50 ms apart: at least 30 s.
      const listed = await eventually(async () => {
        const found = await devices(url!, token);
        return found.some((d) => d.online) ? found : undefined;
      }, 600);
      expect(listed).toHaveLength(1);
      // This machine's own agent counts at once; an installer's token would leave it waiting for approval.
      expect(listed[0]!.approval).toBe('approved');
      const children = childProcesses(run.child.pid!);
      expect(children).toHaveLength(2);

      run.child.kill(signal);
      const exit = await run.exited;

      expect(exit).toEqual({ code: 0, signal: null });
      // start waits for both children before it exits, so they are gone already, not merely on their way.
      expect(children.filter(stillRunning)).toEqual([]);
      // Printed before start exited, but perhaps not yet read from the pipe when 'exit' arrived.
      await run.printed(/agent stopped/);
    },
    120_000,
  );

  it('stops the collector and the agent when start itself is killed outright, so nothing is orphaned', async () => {
    const dataDir = tempDir('start-kill');
    const run = startCli(['start', '--data-dir', dataDir, '--port', '0']);
    await run.printed(/connected to the collector/, READY_WITHIN_MS);
    const children = childProcesses(run.child.pid!);
    expect(children).toHaveLength(2);
    expect(children.filter(stillRunning)).toHaveLength(2);

    run.child.kill('SIGKILL');
    await run.exited;

    // Each child sees its IPC channel close and stops by itself; an orphan's zombie, left for PID 1 to reap, has stopped.
    await eventually(() => (children.some(stillRunning) ? undefined : true), 600);
    expect(children.filter(stillRunning)).toEqual([]);
  }, 120_000);
});
