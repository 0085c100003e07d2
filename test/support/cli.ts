import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
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

/** Starts a long-running CLI command and collects what it prints. */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
  as: RunAs = {},
): { child: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const { file, argv, ids } = command(args, as);
  const child = spawn(file, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
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
