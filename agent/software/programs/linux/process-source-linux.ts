import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../../../node-common/logging';
import { LinuxProcessImages } from './process-image-linux';
import { readProcText } from './proc-text';
import { LINUX_DEFAULT_INTERVAL_MS, type ObservedProcess, type ProcessListener, type ProcessSource } from '../process-source';

export interface ProcfsSourceOptions {
  /** Where procfs is mounted (tests never need another, but the path is not hard-coded). */
  procRoot?: string;
  /** Milliseconds between looks at `/proc`. */
  intervalMs?: number;
  /**
   * Every this many polls each known process's executable is looked at
   * again, a slice per poll: a process that `exec`s another program keeps its
   * pid and start time, and only this notices it.
   */
  execSweepPolls?: number;
  /** Most processes tracked; past it the oldest are forgotten (a fork bomb must not grow the agent without bound). */
  maxTracked?: number;
  logger?: Logger;
}

/** `PF_KTHREAD` in the flags field of /proc/<pid>/stat (include/linux/sched.h). */
const PF_KTHREAD = 0x00200000;
/** USER_HZ: the unit of starttime. It is 100 on every mainstream Linux build, and Node cannot ask sysconf. */
const CLOCK_TICKS_PER_SECOND = 100;

interface Tracked {
  process: ObservedProcess;
  exeLink: string | undefined;
}

/**
 * New processes on Linux, by polling /proc: every `intervalMs`, list the
 * numeric entries of /proc and read only the pids not seen last time (stat
 * for ppid, start time, flags and comm; the `exe` link; `status` for the
 * uid). A pid that reappears with another start time is a new process. A
 * process that exits while it is being read is skipped without a word.
 *
 * No new process, no listing: the last field of /proc/loadavg is the pid the
 * kernel handed out last (to a process or a thread), and while it stays the
 * same nothing has been forked, so listing /proc again could find nothing
 * new (issue 14: the listing was most of the idle agent's CPU). It is
 * compared for change, not order, since pids wrap. A pid handed out just
 * before a listing may belong to a process not yet in /proc (fork attaches
 * it a moment later), so a pid counts as settled only once a whole listing
 * has been made after it was first seen: one listing more after each fork.
 * Exec checks go on between listings, as do the young processes' second look.
 *
 * Polling, not the proc connector or eBPF: both need CAP_NET_ADMIN or
 * CAP_BPF and a kernel feature, and a one-second poll of a few hundred
 * entries costs a fraction of a percent of a core (bench/process-watch.js).
 * A process that starts and exits between two polls is missed: a program
 * worth stopping lives longer than a second.
 */
export class ProcfsProcessSource implements ProcessSource {
  readonly platform = 'linux' as const;
  private readonly procRoot: string;
  private readonly intervalMs: number;
  private readonly execSweepPolls: number;
  private readonly maxTracked: number;
  private readonly log: Logger | undefined;
  private readonly images: LinuxProcessImages;
  private tracked = new Map<number, Tracked>();
  private timer: NodeJS.Timeout | undefined;
  private listener: ProcessListener | undefined;
  private bootTimeMs: number | undefined;
  private polls = 0;
  private sweepCursor = 0;
  /** Pids first read in the last poll: looked at once more, since a process read between its fork and its exec shows its parent's program. */
  private young: number[] = [];
  /** /proc/loadavg's last pid when the last listing began, and the one known to have no process unlisted. */
  private listedAt: string | undefined;
  private settledAt: string | undefined;
  /**
   * Whether /proc/loadavg speaks of the pids under procRoot: the same pid
   * namespace, and the kernel's own file, not one laid over it (LXCFS gives
   * a container a loadavg of its own making). Otherwise every poll lists.
   */
  private newestPidKnown = false;
  private unlistedSince = false;
  /** Polls done and skipped as nothing new, and processes read in full, for the benchmark. */
  readonly stats = { polls: 0, unlisted: 0, read: 0 };

  constructor(options: ProcfsSourceOptions = {}) {
    this.procRoot = options.procRoot ?? '/proc';
    this.intervalMs = options.intervalMs ?? LINUX_DEFAULT_INTERVAL_MS;
    this.execSweepPolls = Math.max(1, options.execSweepPolls ?? 10);
    this.maxTracked = options.maxTracked ?? 65_536;
    this.log = options.logger?.child({ component: 'process-source' });
    this.images = new LinuxProcessImages(this.procRoot);
  }

  async start(listener: ProcessListener): Promise<void> {
    if (this.listener) return;
    this.listener = listener;
    this.bootTimeMs = this.readBootTime();
    this.newestPidKnown = this.readSelf() === String(process.pid) && this.sameDevice(this.procRoot, join(this.procRoot, 'loadavg'));
    this.poll(true);
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.listener = undefined;
  }

  running(): ObservedProcess[] {
    // A poll that did not list /proc knows no process has started, but not which have ended.
    if (this.unlistedSince) this.forgetEnded();
    return [...this.tracked.values()].map((t) => t.process);
  }

  async isSame(p: ObservedProcess): Promise<boolean> {
    const stat = this.readStat(p.pid);
    return stat !== undefined && stat.startKey === p.startKey;
  }

  /** Looks at /proc once now (tests, and the benchmark's timing). */
  pollNow(): void {
    if (this.listener) this.poll(false);
  }

  private schedule(): void {
    if (!this.listener) return;
    this.timer = setTimeout(() => {
      try {
        this.poll(false);
      } catch (e) {
        this.log?.warn('looking at /proc failed', { error: String(e) });
      }
      this.schedule();
    }, this.intervalMs);
    this.timer.unref?.();
  }

  private poll(initial: boolean): void {
    const listener = this.listener;
    if (!listener) return;
    this.polls++;
    this.stats.polls++;
    const newest = this.newestPid();
    if (!initial && newest !== undefined && newest === this.settledAt) {
      this.stats.unlisted++;
      this.unlistedSince = true;
      const execed = [...this.recheck(this.young), ...this.sweepForExec()];
      this.young = [];
      for (const t of execed) listener(t.process, 'exec');
      return;
    }
    let entries: string[];
    try {
      entries = readdirSync(this.procRoot);
    } catch (e) {
      this.log?.warn('cannot list /proc', { error: String(e) });
      return;
    }
    // Settled when the listing before this one began at the same pid: whatever was forked before that is in /proc by now.
    this.settledAt = newest !== undefined && newest === this.listedAt ? newest : undefined;
    this.listedAt = newest;
    this.unlistedSince = false;
    const next = new Map<number, Tracked>();
    const fresh: Tracked[] = [];
    for (const entry of entries) {
      const c = entry.charCodeAt(0);
      if (c < 48 || c > 57) continue;
      const pid = Number(entry);
      if (!Number.isSafeInteger(pid)) continue;
      const known = this.tracked.get(pid);
      if (known) {
        next.set(pid, known);
        continue;
      }
      if (next.size >= this.maxTracked) continue;
      const read = this.readProcess(pid);
      if (!read) continue;
      next.set(pid, read);
      fresh.push(read);
    }
    this.tracked = next;
    const execed = initial ? [] : [...this.recheck(this.young), ...this.sweepForExec()];
    this.young = initial ? [] : fresh.map((t) => t.process.pid);
    for (const t of fresh) listener(t.process, initial ? 'present' : 'started');
    for (const t of execed) listener(t.process, 'exec');
  }

  /** A slice of the known processes, looked at again for a changed executable: they `exec`ed another program. */
  private sweepForExec(): Tracked[] {
    const pids = [...this.tracked.keys()];
    if (pids.length === 0) return [];
    const slice = Math.ceil(pids.length / this.execSweepPolls);
    const chosen: number[] = [];
    for (let i = 0; i < slice && i < pids.length; i++) chosen.push(pids[(this.sweepCursor + i) % pids.length]!);
    this.sweepCursor = (this.sweepCursor + slice) % pids.length;
    return this.recheck(chosen);
  }

  private recheck(pids: readonly number[]): Tracked[] {
    const changed: Tracked[] = [];
    for (const pid of pids) {
      const t = this.tracked.get(pid);
      if (!t || t.process.kernelThread || t.exeLink === undefined) continue;
      const link = this.readLink(pid);
      if (link === undefined || link === t.exeLink) continue;
      const again = this.readProcess(pid);
      if (!again || again.process.startKey !== t.process.startKey) continue;
      this.tracked.set(pid, again);
      changed.push(again);
    }
    return changed;
  }

  private readProcess(pid: number): Tracked | undefined {
    const stat = this.readStat(pid);
    if (!stat) return undefined;
    this.stats.read++;
    const exeLink = stat.kernelThread ? undefined : this.readLink(pid);
    const uid = this.readUid(pid);
    const exePath = exeLink?.replace(/ \(deleted\)$/, '');
    // What it really runs: through a loader, in a private mount namespace, a script (process-image-linux.ts).
    const image = exePath ? this.images.inspect(pid, exePath) : undefined;
    const name = image?.name || stat.comm;
    const process: ObservedProcess = {
      pid,
      ppid: stat.ppid,
      name,
      ...(stat.comm !== name ? { comm: stat.comm } : {}),
      ...(image ? { ...image, name } : {}),
      ...(uid !== undefined ? { uid } : {}),
      startKey: stat.startKey,
      ...(this.bootTimeMs !== undefined ? { startedAtMs: this.bootTimeMs + (Number(stat.startKey) * 1000) / CLOCK_TICKS_PER_SECOND } : {}),
      ...(stat.kernelThread ? { kernelThread: true } : {}),
    };
    return { process, exeLink };
  }

  /** pid, comm, ppid, flags and start time from /proc/<pid>/stat; comm may hold spaces and parentheses, so fields are counted from the last ')'. */
  private readStat(pid: number): { comm: string; ppid: number; startKey: string; kernelThread: boolean } | undefined {
    let text: string;
    try {
      text = readProcText(join(this.procRoot, String(pid), 'stat'), 'latin1');
    } catch {
      return undefined;
    }
    const open = text.indexOf('(');
    const close = text.lastIndexOf(')');
    if (open < 0 || close < open) return undefined;
    const comm = text.slice(open + 1, close);
    // After ") ": state(3) ppid(4) pgrp session tty_nr tpgid flags(9) ... starttime(22).
    const fields = text.slice(close + 2).split(' ');
    const ppid = Number(fields[1]);
    const flags = Number(fields[6]);
    const starttime = fields[19];
    if (!Number.isSafeInteger(ppid) || starttime === undefined || !/^\d+$/.test(starttime)) return undefined;
    return { comm, ppid, startKey: starttime, kernelThread: (flags & PF_KTHREAD) !== 0 };
  }

  /** The pid handed out last in this pid namespace (the last field of /proc/loadavg), as text; undefined when it cannot be read. */
  private newestPid(): string | undefined {
    if (!this.newestPidKnown) return undefined;
    try {
      const text = readProcText(join(this.procRoot, 'loadavg'), 'latin1').trim();
      const last = text.slice(text.lastIndexOf(' ') + 1);
      return /^\d{1,10}$/.test(last) ? last : undefined;
    } catch {
      return undefined;
    }
  }

  /** Drops the processes no longer in /proc. */
  private forgetEnded(): void {
    let entries: string[];
    try {
      entries = readdirSync(this.procRoot);
    } catch {
      return;
    }
    const present = new Set(entries);
    for (const pid of [...this.tracked.keys()]) if (!present.has(String(pid))) this.tracked.delete(pid);
    this.unlistedSince = false;
  }

  private sameDevice(a: string, b: string): boolean {
    try {
      return statSync(a).dev === statSync(b).dev;
    } catch {
      return false;
    }
  }

  private readSelf(): string | undefined {
    try {
      return readlinkSync(join(this.procRoot, 'self'));
    } catch {
      return undefined;
    }
  }

  private readLink(pid: number): string | undefined {
    try {
      return readlinkSync(join(this.procRoot, String(pid), 'exe'));
    } catch {
      // Kernel threads have none; a process of another user may refuse it to a non-root agent; an exited one is gone.
      return undefined;
    }
  }

  private readUid(pid: number): number | undefined {
    try {
      const status = readProcText(join(this.procRoot, String(pid), 'status'), 'latin1');
      const m = /\nUid:\s+(\d+)/.exec(status);
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  private readBootTime(): number | undefined {
    try {
      const m = /\nbtime (\d+)/.exec(readProcText(join(this.procRoot, 'stat'), 'latin1'));
      return m ? Number(m[1]) * 1000 : undefined;
    } catch {
      return undefined;
    }
  }
}
