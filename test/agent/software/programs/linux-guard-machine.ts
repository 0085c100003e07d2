import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { EventDraft } from '../../../../agent/core/events';
import { ExecutableHasher } from '../../../../agent/software/programs/executable-hasher';
import { ProcfsProcessSource } from '../../../../agent/software/programs/linux/process-source-linux';
import type { ObservedProcess, ProcessSource } from '../../../../agent/software/programs/process-source';
import { type SoftwareDecided, SoftwareGuard } from '../../../../agent/software/programs/software-guard';
import { preset } from '../../../../shared/policy/presets';
import type { Policy, SoftwareSettings } from '../../../../shared/policy/schema';
import { validatePolicy } from '../../../../shared/policy/validate';
import type { TrayNotice } from '../../../../shared/protocol';
import { eventually, tempDir } from '../../../support/cli';
import { silentLogger } from '../../../support/harness';
import { LINUX_SOFTWARE } from '../../../support/linux-software';

/**
 * The software guard on Linux with the real /proc source and real
 * processes, for tests: copies of /bin/sleep under the names of the programs
 * a school forbids, started by the test and stopped (or not) by the guard.
 * The source is narrowed to the processes the test started, so the guard can
 * never touch anything else on the machine whatever the policy under test
 * says.
 */

export const SLEEP = realpathSync('/bin/sleep');
export const TAIL = realpathSync('/usr/bin/tail');
export const sha256Of = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Only the test's processes: those it started (they may exec other programs, keeping their pid) and those whose executable is in its folder. */
class OnlyOurs implements ProcessSource {
  readonly platform = 'linux' as const;
  constructor(
    private readonly inner: ProcfsProcessSource,
    private readonly dir: string,
    private readonly started: Set<number>,
  ) {}
  private ours(p: ObservedProcess): boolean {
    return this.started.has(p.pid) || (p.path !== undefined && p.path.startsWith(this.dir));
  }
  start(listener: Parameters<ProcessSource['start']>[0]) {
    return this.inner.start((p, change) => {
      if (this.ours(p)) listener(p, change);
    });
  }
  stop() {
    return this.inner.stop();
  }
  isSame(p: ObservedProcess) {
    return this.ours(p) ? this.inner.isSame(p) : Promise.resolve(false);
  }
  running() {
    return this.inner.running().filter((p) => this.ours(p));
  }
}

/** Only processes running a program of this name: for a whole agent, whose source cannot be told which pids are the test's. */
export class OnlyNamed implements ProcessSource {
  readonly platform = 'linux' as const;
  constructor(
    private readonly inner: ProcfsProcessSource,
    private readonly name: string,
  ) {}
  private ours(p: ObservedProcess): boolean {
    return p.name === this.name;
  }
  start(listener: Parameters<ProcessSource['start']>[0]) {
    return this.inner.start((p, change) => {
      if (this.ours(p)) listener(p, change);
    });
  }
  stop() {
    return this.inner.stop();
  }
  isSame(p: ObservedProcess) {
    return this.ours(p) ? this.inner.isSame(p) : Promise.resolve(false);
  }
  running() {
    return this.inner.running().filter((p) => this.ours(p));
  }
}

export function policyWith(base: 'basildon-primary' | 'carrington-infant', software: Partial<SoftwareSettings>): Policy {
  const policy = preset(base)!;
  policy.software = { default: { ...policy.software.default, ...software } };
  const checked = validatePolicy(policy);
  if (!checked.ok) throw new Error(JSON.stringify(checked.problems));
  return policy;
}

const children: ChildProcess[] = [];
const guards: SoftwareGuard[] = [];

/** Call from afterEach: stops every guard and SIGKILLs every process a test started. */
export async function cleanUpMachines(): Promise<void> {
  for (const g of guards.splice(0)) await g.stop();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

export async function machine(initial: Policy, options: { selfPids?: number[] } = {}) {
  const dir = realpathSync(tempDir('software-guard'));
  const started = new Set<number>();
  const events: EventDraft[] = [];
  const notices: Array<{ uid: number; notice: TrayNotice }> = [];
  const decided: SoftwareDecided[] = [];
  let policy = initial;
  const self = options.selfPids ?? [];
  const source = new OnlyOurs(new ProcfsProcessSource({ intervalMs: 100, execSweepPolls: 5 }), dir, started);
  const hasher = new ExecutableHasher();
  const guard = new SoftwareGuard({
    policy: () => policy,
    source,
    record: async (e) => {
      events.push(e);
    },
    notices: { showTo: (uid, notice) => notices.push({ uid, notice }), withdraw: () => undefined },
    roleOf: async () => 'pupil',
    logger: silentLogger(),
    // Not this process: the programs it starts would otherwise be the agent's children, which the failsafe spares.
    selfPids: () => self,
    os: LINUX_SOFTWARE.os.programs,
    killer: LINUX_SOFTWARE.killer,
    hasher,
    onDecided: (d) => decided.push(d),
  });
  guards.push(guard);
  await guard.start();

  /** A copy of `binary` at dir/<sub>/<name> (made once), mode 0755. */
  const copy = (name: string, options: { binary?: string; sub?: string } = {}) => {
    const folder = join(dir, options.sub ?? 'bin');
    mkdirSync(folder, { recursive: true });
    const path = join(folder, name);
    // A copy already there may be running: it is started again, not overwritten (that would fail with ETXTBSY).
    if (!existsSync(path)) {
      copyFileSync(options.binary ?? SLEEP, path);
      chmodSync(path, 0o755);
    }
    return path;
  };
  /** Any command, as a process of this test (the guard sees it and whatever it execs). */
  const spawnOurs = (command: string, args: string[], options: SpawnOptions = {}) => {
    const child = spawn(command, args, { stdio: 'ignore', ...options });
    children.push(child);
    started.add(child.pid!);
    return { child, pid: child.pid! };
  };
  /** A copy of `binary` at dir/<sub>/<name>, started with `args`. */
  const run = (name: string, options: { binary?: string; sub?: string; args?: string[] } = {}) => {
    const path = copy(name, options);
    return { ...spawnOurs(path, options.args ?? ['600']), path };
  };
  const eventFor = (type: string, pid: number) =>
    eventually(() => events.find((e) => e.type === type && (e.data as { process?: { pid: number } }).process?.pid === pid), 300, 50);
  const decidedFor = (pid: number, path?: string) =>
    eventually(() => decided.find((d) => d.process.pid === pid && (path === undefined || d.process.path === path)), 300, 50);
  const exited = (child: ChildProcess) =>
    eventually(() => (child.exitCode !== null || child.signalCode !== null ? (child.signalCode ?? String(child.exitCode)) : undefined), 300, 50);
  const setPolicy = (p: Policy) => {
    policy = p;
  };
  return { dir, guard, events, notices, decided, copy, run, spawnOurs, eventFor, decidedFor, exited, setPolicy, hasher, self };
}
