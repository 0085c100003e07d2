import { execFileSync } from 'node:child_process';

/**
 * Runs a long-lived service until SIGINT or SIGTERM, then stops it once and
 * resolves with its exit code. Ctrl-C reaches every process in the terminal's
 * group and `invigilator start` then sends SIGTERM as well, so further signals
 * while stopping are expected and ignored; whoever started us can SIGKILL.
 * A service started by `invigilator start` also stops when that parent
 * disappears (its IPC channel closes), so it never outlives it.
 *
 * With `exitWithinMs`, the process is gone that long after the signal
 * whatever is still running: stop() not finished (exit 1), or finished with
 * something left holding the event loop (its exit code). What was left is
 * named on stderr, so it can be found and fixed.
 */
export function untilSignalled(stop: (signal: string) => Promise<void>, options: { exitWithinMs?: number } = {}): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: string) => {
      if (stopping) return;
      stopping = true;
      if (options.exitWithinMs !== undefined) exitWithin(options.exitWithinMs, () => outcome);
      // A 'disconnect' listener keeps the IPC channel, and so the process, alive: let go of it once stopped.
      const release = (code: number) => {
        outcome = code;
        process.off('disconnect', onDisconnect);
        if (process.connected) process.disconnect();
        resolve(code);
      };
      stop(signal).then(
        () => release(0),
        () => release(1),
      );
    };
    let outcome: number | undefined;
    const onDisconnect = () => onSignal('parent-gone');
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    if (process.connected) process.once('disconnect', onDisconnect);
  });
}

/** A last resort for a bounded stop: an unref'd timer, so a process that ends by itself before it is not held up. */
function exitWithin(ms: number, outcome: () => number | undefined): void {
  setTimeout(() => {
    const code = outcome();
    const holding = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    process.stderr.write(
      code === undefined
        ? `INV_ERR_INTERNAL: did not stop within ${ms} ms; exiting (unsent events stay in the outbox). Still running: ${holding.join(', ')}\n`
        : `stopped, but still held by ${holding.join(', ')} after ${ms} ms; exiting\n`,
    );
    process.exit(code ?? 1);
  }, ms).unref();
}

/**
 * The npm process that ran us through `npm start`, if any. npm does not pass
 * SIGTERM on to its script, so without watching it our processes would outlive
 * a terminated `npm start`. npm runs scripts through `sh -c`, so it is our
 * parent or our grandparent.
 */
export function launchingNpmPid(): number | undefined {
  if (!process.env.npm_lifecycle_event) return undefined;
  for (let pid = process.ppid, hops = 0; pid > 1 && hops < 3; hops++) {
    const info = psInfo(pid);
    if (!info) return undefined;
    if (/(^|\/)(npm|npm-cli\.js|node)$/.test(info.comm) || info.comm.startsWith('npm')) return pid;
    pid = info.ppid;
  }
  return undefined;
}

function psInfo(pid: number): { ppid: number; comm: string } | undefined {
  try {
    const [ppid, ...comm] = execFileSync('ps', ['-o', 'ppid=,comm=', '-p', String(pid)], { encoding: 'utf8', timeout: 2000 })
      .trim()
      .split(/\s+/);
    return { ppid: Number(ppid), comm: comm.join(' ') };
  } catch {
    return undefined;
  }
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
