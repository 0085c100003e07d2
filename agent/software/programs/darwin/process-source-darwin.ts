import type { Logger } from '../../../../node-common/logging';
import type { CommandRunner } from '../../../os/command-runner';
import type { ObservedProcess, ProcessListener, ProcessSource } from '../process-source';

/** `ps` as the macOS source runs it: every process, with its start time (`lstart`) and executable (`comm`, the last column, which may hold spaces). */
export const PS_ARGS: readonly string[] = ['-axo', 'pid,ppid,uid,lstart,comm'];

/** Seconds a `ps` run may take before it is given up for this poll. */
const PS_TIMEOUT_MS = 10_000;
const MAX_ROWS = 20_000;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * `  PID  PPID   UID STARTED                      COMM`, then one row per
 * process: three numbers, `lstart` in ps's fixed `%a %b %e %T %Y` form
 * (`Mon Nov 23 09:12:01 2026`, local time), then the executable as the rest
 * of the line. Rows that do not have that shape are skipped: a process
 * cannot put a newline in its executable path, but it can put anything else.
 */
export function parsePsOutput(text: string): ObservedProcess[] {
  const out: ObservedProcess[] = [];
  const row =
    /^\s*(\d{1,10})\s+(\d{1,10})\s+(\d{1,10})\s+((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +([A-Z][a-z]{2}) +(\d{1,2}) +(\d{2}):(\d{2}):(\d{2}) +(\d{4})) (.+)$/;
  for (const line of text.split('\n')) {
    if (out.length >= MAX_ROWS) break;
    const m = row.exec(line.replace(/\r$/, ''));
    if (!m) continue;
    const [, pid, ppid, uid, lstart, mon, day, hh, mm, ss, year, rawComm] = m;
    // ps pads the column; an executable path never starts or ends with spaces that matter.
    const comm = rawComm!.trim();
    if (comm === '' || comm.length > 4096) continue;
    const month = MONTHS.indexOf(mon!);
    const startedAtMs = month < 0 ? NaN : new Date(Number(year), month, Number(day), Number(hh), Number(mm), Number(ss)).getTime();
    const path = comm.startsWith('/') ? comm : undefined;
    const name = comm.slice(comm.lastIndexOf('/') + 1) || comm;
    out.push({
      pid: Number(pid),
      ppid: Number(ppid),
      name,
      ...(path ? { path } : {}),
      uid: Number(uid),
      startKey: lstart!.replace(/ +/g, ' '),
      ...(Number.isFinite(startedAtMs) ? { startedAtMs } : {}),
    });
  }
  return out;
}

export interface PsSourceOptions {
  runner: CommandRunner;
  /** Milliseconds between `ps` runs. One run costs more than a look at /proc, so the default is longer than Linux's. */
  intervalMs?: number;
  logger?: Logger;
}

/**
 * New processes on macOS by polling `ps`: the endpoint-security framework
 * that Santa uses needs a signed system extension with Apple's entitlement,
 * which a Node service cannot have. A process is new when its pid was not
 * listed last time, or was listed with another start time.
 */
export class PsProcessSource implements ProcessSource {
  readonly platform = 'darwin' as const;
  private listener: ProcessListener | undefined;
  private timer: NodeJS.Timeout | undefined;
  private known = new Map<number, ObservedProcess>();
  private readonly intervalMs: number;
  private readonly log: Logger | undefined;
  private polling: Promise<void> = Promise.resolve();

  constructor(private readonly options: PsSourceOptions) {
    this.intervalMs = options.intervalMs ?? 1500;
    this.log = options.logger?.child({ component: 'process-source' });
  }

  async start(listener: ProcessListener): Promise<void> {
    if (this.listener) return;
    this.listener = listener;
    await this.poll(true);
    this.schedule();
  }

  async stop(): Promise<void> {
    this.listener = undefined;
    if (this.timer) clearTimeout(this.timer);
    await this.polling;
  }

  running(): ObservedProcess[] {
    return [...this.known.values()];
  }

  async isSame(p: ObservedProcess): Promise<boolean> {
    const result = await this.options.runner.run('ps', ['-o', 'lstart=', '-p', String(p.pid)], PS_TIMEOUT_MS).catch(() => undefined);
    if (!result || result.code !== 0) return false;
    return result.stdout.trim().replace(/ +/g, ' ') === p.startKey;
  }

  /** Runs `ps` once now (tests). */
  pollNow(): Promise<void> {
    return this.poll(false);
  }

  private schedule(): void {
    if (!this.listener) return;
    this.timer = setTimeout(() => {
      void this.poll(false).finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref?.();
  }

  private poll(initial: boolean): Promise<void> {
    this.polling = this.polling.then(() => this.pollOnce(initial));
    return this.polling;
  }

  private async pollOnce(initial: boolean): Promise<void> {
    const listener = this.listener;
    if (!listener) return;
    const result = await this.options.runner.run('ps', [...PS_ARGS], PS_TIMEOUT_MS).catch((e: unknown) => {
      this.log?.warn('ps failed', { error: String(e) });
      return undefined;
    });
    if (!result || result.code !== 0) return;
    const rows = parsePsOutput(result.stdout);
    const next = new Map<number, ObservedProcess>();
    const changes: Array<[ObservedProcess, 'present' | 'started' | 'exec']> = [];
    for (const p of rows) {
      const known = this.known.get(p.pid);
      if (known && known.startKey === p.startKey && known.path === p.path) {
        next.set(p.pid, known);
        continue;
      }
      next.set(p.pid, p);
      // Same pid and start time, another executable: it ran another program in place.
      changes.push([p, initial ? 'present' : known && known.startKey === p.startKey ? 'exec' : 'started']);
    }
    this.known = next;
    for (const [p, change] of changes) listener(p, change);
  }
}
