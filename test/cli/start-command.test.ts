import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { eventually, isAlive, startCli, tempDir } from '../support/cli';

function childPids(parent: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(parent)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

type Listed = { online: boolean; hostname: string; approval: string };

async function devices(url: string, token: string): Promise<Listed[]> {
  const res = await fetch(`${url}/api/devices`, { headers: { authorization: `Bearer ${token}` } });
  return ((await res.json()) as { devices: Listed[] }).devices;
}

describe('invigilator start (what npm start runs)', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('starts a collector and an enrolled agent, prints the address, and stops both on %s with exit 0', async (signal) => {
    const dataDir = tempDir('start');
    const run = startCli(['start', '--data-dir', dataDir, '--port', '0']);

    const url = await eventually(() => /Collector: (http:\/\/127\.0\.0\.1:\d+)/.exec(run.output())?.[1]);
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const listed = await eventually(async () => {
      const found = await devices(url, token);
      return found.some((d) => d.online) ? found : undefined;
    });
    expect(listed).toHaveLength(1);
    // This machine's own agent counts at once; an installer's token would leave it waiting for approval.
    expect(listed[0]!.approval).toBe('approved');
    const children = childPids(run.child.pid!);
    expect(children).toHaveLength(2);

    run.child.kill(signal);
    const exit = await run.exited;

    expect(exit).toEqual({ code: 0, signal: null });
    expect(children.filter(isAlive)).toEqual([]);
    expect(run.output()).toMatch(/agent stopped/);
  });

  it('stops the collector and the agent when start itself is killed outright, so nothing is orphaned', async () => {
    const dataDir = tempDir('start-kill');
    const run = startCli(['start', '--data-dir', dataDir, '--port', '0']);
    await eventually(() => (/connected to the collector/.test(run.output()) ? true : undefined));
    const children = childPids(run.child.pid!);
    expect(children).toHaveLength(2);

    run.child.kill('SIGKILL');
    await run.exited;

    await eventually(() => (children.some(isAlive) ? undefined : true));
    expect(children.filter(isAlive)).toEqual([]);
  });
});
