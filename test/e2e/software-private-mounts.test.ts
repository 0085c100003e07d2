import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent } from '../../agent/agent';
import { LogindSessions } from '../../agent/sessions/session-directory';
import { ProcfsProcessSource } from '../../agent/software/programs/linux/process-source-linux';
import { preset } from '../../shared/policy/presets';
import { eventually, isAlive, tempDir } from '../support/cli';
import { silentLogger, startTestCollector } from '../support/harness';
import { agentConfigFor } from '../support/tray-client';
import { logindDesktop } from '../support/logind';
import { OnlyNamed, SLEEP } from '../agent/software/programs/linux-guard-machine';
import { LINUX_SOFTWARE } from '../support/linux-software';

/**
 * The review's bypass end to end: a pupil makes a private mount namespace
 * (`unshare -Urm`), mounts a tmpfs over /usr/local/bin and runs a copy of
 * sleep from it. The agent stops it under Basildon's pupils' privateMounts
 * setting, and the network manager sees what was seen: the path inside the
 * namespace, that it was private, and that the path was not the file.
 */

const AMY = 1000;

function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the program must belong to a pupil (uid 1000), which needs root to arrange';
  const probe = spawnSync('unshare', ['-Urm', 'sh', '-c', 'mount -t tmpfs tmpfs /usr/local/bin'], { uid: AMY, gid: AMY, cwd: '/', encoding: 'utf8' });
  return probe.status === 0 ? undefined : `unshare -Urm with a tmpfs fails here as uid ${AMY}: ${String(probe.error ?? probe.stderr).trim()}`;
}
const why = unavailable();
if (why) process.stdout.write(`software-private-mounts e2e: skipping: ${why}\n`);
const describeIfPossible = why ? describe.skip : describe;

describeIfPossible("a pupil's program hidden in a private mount namespace", () => {
  it('is stopped, and the collector stores what the agent saw', async () => {
    const c = await startTestCollector({ policy: preset('basildon-primary')! });
    const logind = tempDir('logind');
    logindDesktop(logind, '3', AMY, 'amy.p');
    // A name no other process on this machine has: the agent's source is narrowed to it, so nothing else is judged.
    const name = `homework-${randomBytes(4).toString('hex')}`;
    const agent = await startAgent({
      config: await agentConfigFor(c, tempDir('software-ns-e2e'), 'basildon-primary'),
      fallbackPolicy: preset('basildon-primary')!,
      logger: silentLogger(),
      platform: 'linux',
      version: '0.0.0-test',
      linkTuning: { backoffBaseMs: 50, backoffCapMs: 200 },
      sessions: { directory: new LogindSessions(logind), control: { signOut: async () => undefined } },
      software: { control: 'enforce', processes: new OnlyNamed(new ProcfsProcessSource({ intervalMs: 100 }), name), ...LINUX_SOFTWARE, folders: () => [] },
    });

    let shell: ChildProcess | undefined;
    let pid: number | undefined;
    try {
      const dir = tempDir('amys-program');
      chmodSync(dir, 0o755);
      const source = join(dir, name);
      copyFileSync(SLEEP, source);
      chmodSync(source, 0o755);
      // Started through a shell in the background, so that it is not a child of this process (the agent's children are spared).
      const inside = `/usr/local/bin/${name}`;
      const pupil = `unshare -Urm sh -c 'mount -t tmpfs tmpfs /usr/local/bin && cp "$0" ${inside} && exec ${inside} 600' ${source}`;
      shell = spawn('sh', ['-c', `${pupil} & echo $!; wait`], { uid: AMY, gid: AMY, cwd: '/', stdio: ['ignore', 'pipe', 'ignore'] });
      pid = Number(await new Promise<string>((resolve) => shell!.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()))));

      const detected = await eventually(async () => (await c.store.queryEvents({ type: 'software.detected', limit: 10 })).events[0]);
      expect(detected).toMatchObject({
        user: { osId: String(AMY) },
        clause: { id: 'bps-bypass-controls' },
        data: {
          ruleId: 'private-mounts',
          category: 'private-mounts',
          action: 'terminate',
          process: { pid, name, path: inside, mountNamespace: 'private', pathVouched: false },
        },
      });
      await eventually(async () => (await c.store.queryEvents({ type: 'software.terminated', limit: 10 })).events[0]);
      await eventually(() => (isAlive(pid!) ? undefined : true));
    } finally {
      // Whatever happened, nothing of the test stays behind: the pupil's program, its shell, the agent, the collector.
      if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
      shell?.kill('SIGKILL');
      await agent.stop('test over');
      await c.close();
    }
  });
});
