import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(__dirname, '../..');
export const CLI = join(ROOT, 'bin/invigilator.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface RunAs {
  /** Run as a user who is not root (nobody, when the tests run as root), so that file permissions apply. */
  unprivileged?: boolean;
  /** The process's umask, set by a real shell before the CLI starts (`umask 000`). */
  umask?: string;
}

/** The user `unprivileged` runs as: nobody when the tests run as root, else the tests' own user. */
export const UNPRIVILEGED = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;

function command(args: string[], as: RunAs): { file: string; argv: string[]; ids: { uid?: number; gid?: number } } {
  const ids = as.unprivileged && UNPRIVILEGED ? UNPRIVILEGED : {};
  if (as.umask === undefined) return { file: process.execPath, argv: [CLI, ...args], ids };
  return { file: 'sh', argv: ['-c', `umask ${as.umask} && exec "$0" "$@"`, process.execPath, CLI, ...args], ids };
}

/** Runs the built CLI as a user would, with an environment free of our variables unless given. */
export function runCli(args: string[], options: { input?: string; env?: Record<string, string>; cwd?: string } & RunAs = {}): CliResult {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('INVIGILATOR_')));
  const { file, argv, ids } = command(args, options);
  const run = spawnSync(file, argv, {
    input: options.input,
    encoding: 'utf8',
    env: { ...env, ...options.env },
    cwd: options.cwd ?? ROOT,
    timeout: 30_000,
    ...ids,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `invigilator-${prefix}-`));
}

export interface StartedCli {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Resolves with the first match of `pattern` in what the command has printed, as soon as it is printed.
   * Rejects, with the output so far, if its output ends first or nothing matches within `withinMs`: a bound
   * for a hung command, generous because start-up on a busy machine is slow, never a measure of speed.
   */
  printed: (pattern: RegExp, withinMs?: number) => Promise<RegExpExecArray>;
}

/** Starts a long-running CLI command and collects what it prints. */
export function startCli(args: string[], env: Record<string, string> = {}, as: RunAs = {}): StartedCli {
  const { file, argv, ids } = command(args, as);
  const child = spawn(file, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  // 'close' comes after the last 'data' of both pipes, which 'exit' does not promise.
  let closed = false;
  child.once('close', () => (closed = true));
  const printed = (pattern: RegExp, withinMs = 30_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(output);
        if (match) finish(() => resolve(match));
        else if (closed) finish(() => reject(new Error(`the command's output ended without ${pattern}; it printed:\n${output}`)));
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`nothing matching ${pattern} printed within ${withinMs} ms; it printed:\n${output}`))),
        withinMs,
      );
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        child.stderr!.off('data', check);
        child.off('close', check);
        settle();
      };
      // Registered after the collecting listeners above, so `output` already holds each chunk when it is checked.
      child.stdout!.on('data', check);
      child.stderr!.on('data', check);
      child.once('close', check);
      check();
    });
  return { child, output: () => output, exited, printed };
}

/** Polls until `check` returns a value, at most `attempts` times `everyMs` apart: bounded, never a timing assertion. */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, attempts = 200, everyMs = 50): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`condition not met after ${attempts} attempts`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One process as /proc saw it at a moment: its id, and its start time (so that a reused id is not mistaken for it). */
export interface ProcessSeen {
  pid: number;
  startTime: string;
}

/** Fields 3 (state), 4 (parent) and 22 (start time) of /proc/PID/stat; the command name before them may hold spaces and ')'. */
function procStat(pid: number): { state: string; ppid: number; startTime: string } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0]!, ppid: Number(fields[1]), startTime: fields[19]! };
}

/** The processes whose parent is `parent` now (Linux: read from /proc, as pgrep -P does). */
export function childProcesses(parent: number): ProcessSeen[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => {
      const stat = procStat(Number(name));
      return stat && stat.ppid === parent ? [{ pid: Number(name), startTime: stat.startTime }] : [];
    });
}

/**
 * Whether that very process still runs. A zombie has stopped: it has exited and only waits for whoever
 * adopted it to reap it, which for an orphan is PID 1, in its own time. kill(pid, 0) cannot tell the two apart.
 */
export function stillRunning(seen: ProcessSeen): boolean {
  const stat = procStat(seen.pid);
  if (!stat || stat.startTime !== seen.startTime) return false;
  return stat.state !== 'Z' && stat.state !== 'X';
}
