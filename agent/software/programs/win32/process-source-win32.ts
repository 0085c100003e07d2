import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { z } from 'zod';
import type { Logger } from '../../../../node-common/logging';
import type { PowerShellSession } from '../../../os/win32/powershell-session';
import { POWERSHELL_COMMAND } from '../../../os/win32/powershell-session';
import { backoffDelay } from '../../../core/backoff';
import type { ObservedProcess, ProcessListener, ProcessSource } from '../process-source';

/**
 * New processes on Windows, from the kernel's own process-start trace
 * (`Win32_ProcessStartTrace`, the WMI class in Krnlprov.dll; needs an
 * administrator, which the LocalSystem service is) through one PowerShell
 * that lives as long as the agent: it prints the processes already running,
 * then `ready`, then one JSON line per start, and `tick` every few seconds
 * so a hung session can be told from a quiet computer.
 *
 * Not `__InstanceCreationEvent WITHIN n ... Win32_Process`: that makes WMI
 * poll the whole process table every n seconds (Velociraptor's
 * Windows.Events.ProcessCreation notes it misses processes shorter than its
 * interval). The start trace is pushed by the kernel; the executable's path
 * and creation time are then read from Win32_Process for that one pid.
 */
export const PROCESS_WATCH_SCRIPT = `# invigilator:process-watch
$ErrorActionPreference = 'Continue'
$ProgressPreference = 'SilentlyContinue'
[Console]::OutputEncoding = [Text.Encoding]::UTF8
function Out-Process($kind, $p, $trace) {
  $created = $null
  if ($p -and $p.CreationDate) { $created = $p.CreationDate.ToUniversalTime().ToString('o') }
  $o = [ordered]@{ k = $kind }
  if ($trace) {
    $o.pid = [long]$trace.ProcessID; $o.ppid = [long]$trace.ParentProcessID; $o.name = [string]$trace.ProcessName
    $o.session = [long]$trace.SessionID; $o.time = [string]$trace.TIME_CREATED
  } else {
    $o.pid = [long]$p.ProcessId; $o.ppid = [long]$p.ParentProcessId; $o.name = [string]$p.Name; $o.session = [long]$p.SessionId
  }
  if ($p) { $o.path = $p.ExecutablePath; $o.created = $created }
  [Console]::Out.WriteLine((ConvertTo-Json -Compress -InputObject ([pscustomobject]$o)))
}
foreach ($p in @(Get-CimInstance -ClassName Win32_Process)) { Out-Process 'present' $p $null }
Register-CimIndicationEvent -ClassName Win32_ProcessStartTrace -SourceIdentifier InvigilatorProcessStart | Out-Null
[Console]::Out.WriteLine('{"k":"ready"}')
while ($true) {
  $e = Wait-Event -SourceIdentifier InvigilatorProcessStart -Timeout 5
  if ($null -eq $e) { [Console]::Out.WriteLine('{"k":"tick"}'); continue }
  Remove-Event -EventIdentifier $e.EventIdentifier
  $t = $e.SourceEventArgs.NewEvent
  $p = Get-CimInstance -ClassName Win32_Process -Filter ('ProcessId = ' + [long]$t.ProcessID) -ErrorAction SilentlyContinue
  Out-Process 'start' $p $t
}`;

/** `-EncodedCommand`: the script as base64 UTF-16LE, so no quoting of it can go wrong. */
export function processWatchArgs(script = PROCESS_WATCH_SCRIPT): string[] {
  return ['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand', Buffer.from(script, 'utf16le').toString('base64')];
}

const MAX_LINE_CHARS = 16 * 1024;
const text = (max: number) => z.string().max(max);
const pidNumber = z.number().int().min(0).max(0xffffffff);

const processLine = z.object({
  k: z.enum(['present', 'start']),
  pid: pidNumber,
  ppid: pidNumber.nullish(),
  name: text(1024).nullish(),
  session: pidNumber.nullish(),
  /** TIME_CREATED: a FILETIME (100 ns since 1601), as text because it passes 2^53. */
  time: z
    .string()
    .regex(/^\d{1,20}$/)
    .nullish(),
  path: text(4096).nullish(),
  created: text(64).nullish(),
});
const controlLine = z.object({ k: z.enum(['ready', 'tick']) });

export type WatchLine = { kind: 'ready' } | { kind: 'tick' } | { kind: 'present' | 'started'; process: ObservedProcess } | { kind: 'invalid' };

/** FILETIME ticks at the Unix epoch. */
const FILETIME_UNIX_EPOCH = 116444736000000000n;

function filetimeToMs(ft: string): number | undefined {
  try {
    const ticks = BigInt(ft);
    if (ticks < FILETIME_UNIX_EPOCH) return undefined;
    return Number((ticks - FILETIME_UNIX_EPOCH) / 10000n);
  } catch {
    return undefined;
  }
}

/**
 * One line the watch script printed. Everything in it is untrusted (a
 * process names itself), so it is parsed, capped and validated; anything
 * else is `invalid`, never an exception.
 */
export function parseWatchLine(line: string): WatchLine {
  const trimmed = line.replace(/^\uFEFF/, '').trim();
  if (trimmed === '' || trimmed.length > MAX_LINE_CHARS) return { kind: 'invalid' };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return { kind: 'invalid' };
  }
  const control = controlLine.safeParse(value);
  if (control.success) return control.data.k === 'ready' ? { kind: 'ready' } : { kind: 'tick' };
  const parsed = processLine.safeParse(value);
  if (!parsed.success) return { kind: 'invalid' };
  const d = parsed.data;
  const path = d.path ?? undefined;
  const name = d.name || (path ? path.slice(Math.max(path.lastIndexOf('\\'), path.lastIndexOf('/')) + 1) : '');
  if (!name) return { kind: 'invalid' };
  const createdMs = d.created ? Date.parse(d.created) : NaN;
  const traceMs = d.time ? filetimeToMs(d.time) : undefined;
  // What tells this process from a later one with its pid: its creation time (the same value the re-check before a kill reads).
  // None at all (the Idle process): such a process is never confirmed as the same one, and so never killed.
  const startKey = d.created ?? (d.time ? `ft:${d.time}` : 'unknown');
  const process: ObservedProcess = {
    pid: d.pid,
    ppid: d.ppid ?? 0,
    name,
    ...(path ? { path } : {}),
    ...(d.session !== null && d.session !== undefined ? { uid: d.session } : {}),
    startKey,
    ...(Number.isFinite(createdMs) ? { startedAtMs: createdMs } : traceMs !== undefined ? { startedAtMs: traceMs } : {}),
  };
  return { kind: d.k === 'present' ? 'present' : 'started', process };
}

/** The script that reads one process's creation time, for the check before a kill. */
export function creationTimeScript(pid: number): string {
  if (!Number.isSafeInteger(pid) || pid < 0) throw new Error('not a pid');
  return `# invigilator:process-created
$p = Get-CimInstance -ClassName Win32_Process -Filter 'ProcessId = ${pid}' -ErrorAction SilentlyContinue
if ($p -and $p.CreationDate) { $p.CreationDate.ToUniversalTime().ToString('o') }`;
}

export interface StartTraceSourceOptions {
  /** The program to run and its arguments (tests run node printing a recording). */
  command?: string;
  args?: readonly string[];
  /** Answers the re-check before a kill (the agent's long-lived query session). */
  queries: PowerShellSession;
  logger?: Logger;
  /** How long to wait for `ready` before carrying on without it. */
  readyTimeoutMs?: number;
  /** A session that prints nothing, not even `tick`, for this long is restarted. */
  silenceMs?: number;
  /** Restarts after a crash back off from 1 s to this. */
  maxBackoffMs?: number;
}

/** Stream of process starts from one long-lived PowerShell, restarted (with backoff) when it dies or goes silent. */
export class StartTraceProcessSource implements ProcessSource {
  readonly platform = 'win32' as const;
  private child: ChildProcessWithoutNullStreams | undefined;
  private listener: ProcessListener | undefined;
  private buffer = '';
  private readonly known = new Map<number, ObservedProcess>();
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;
  private readyResolve: (() => void) | undefined;
  private readonly log: Logger | undefined;
  /** Lines that were not understood, for tests and logs. */
  invalidLines = 0;

  constructor(private readonly options: StartTraceSourceOptions) {
    this.log = options.logger?.child({ component: 'process-source' });
  }

  async start(listener: ProcessListener): Promise<void> {
    if (this.listener) return;
    this.listener = listener;
    const ready = new Promise<void>((resolve) => {
      this.readyResolve = resolve;
      const t = setTimeout(resolve, this.options.readyTimeoutMs ?? 30_000);
      t.unref?.();
    });
    this.spawnWatch();
    await ready;
  }

  async stop(): Promise<void> {
    this.listener = undefined;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill();
        const t = setTimeout(resolve, 2000);
        t.unref?.();
      });
    }
  }

  running(): ObservedProcess[] {
    return [...this.known.values()];
  }

  async isSame(p: ObservedProcess): Promise<boolean> {
    if (p.startKey === 'unknown') return false;
    const created = await this.options.queries.run(creationTimeScript(p.pid)).catch(() => undefined);
    if (created === undefined || created === '') return false;
    if (!p.startKey.startsWith('ft:')) return created.trim() === p.startKey;
    // Known only by the trace's time: the creation time must be within a second of it.
    const traced = filetimeToMs(p.startKey.slice(3));
    const ms = Date.parse(created.trim());
    return traced !== undefined && Number.isFinite(ms) && Math.abs(ms - traced) < 1000;
  }

  /** The pid of the watching PowerShell, so the agent can list it among its own. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private spawnWatch(): void {
    if (!this.listener) return;
    const command = this.options.command ?? POWERSHELL_COMMAND;
    const args = this.options.args ?? processWatchArgs();
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    } catch (e) {
      this.log?.error('cannot start the process watch', { error: String(e) });
      this.scheduleRestart();
      return;
    }
    this.child = child;
    this.buffer = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (child === this.child) this.onData(chunk);
    });
    child.stderr.resume();
    child.stdin.on('error', () => undefined);
    child.on('error', (err) => {
      if (child !== this.child) return;
      this.child = undefined;
      this.log?.warn('the process watch failed', { error: err.message });
      this.scheduleRestart();
    });
    child.on('exit', (code, signal) => {
      if (child !== this.child) return;
      this.child = undefined;
      this.log?.warn('the process watch exited', { code, signal });
      this.scheduleRestart();
    });
    this.armSilence();
  }

  private scheduleRestart(): void {
    if (!this.listener) return;
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    const delay = backoffDelay(this.restarts, 1000, this.options.maxBackoffMs ?? 60_000);
    this.restarts++;
    this.restartTimer = setTimeout(() => this.spawnWatch(), delay);
    this.restartTimer.unref?.();
  }

  private armSilence(): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      this.log?.warn('the process watch went silent; restarting it');
      this.child?.kill();
    }, this.options.silenceMs ?? 60_000);
    this.silenceTimer.unref?.();
  }

  private onData(chunk: string): void {
    this.armSilence();
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      this.onLine(line);
    }
    // A line that never ends is dropped rather than kept growing.
    if (this.buffer.length > MAX_LINE_CHARS) {
      this.buffer = '';
      this.invalidLines++;
    }
  }

  private onLine(line: string): void {
    const parsed = parseWatchLine(line);
    if (parsed.kind === 'invalid') {
      if (line.trim() !== '') this.invalidLines++;
      return;
    }
    if (parsed.kind === 'ready') {
      this.restarts = 0;
      this.readyResolve?.();
      this.readyResolve = undefined;
      return;
    }
    if (parsed.kind === 'tick') return;
    const previous = this.known.get(parsed.process.pid);
    // A restarted session lists the running processes again: those already known are not new.
    if (parsed.kind === 'present' && previous?.startKey === parsed.process.startKey) return;
    if (this.known.size >= 65_536 && !previous) this.known.delete(this.known.keys().next().value!);
    this.known.set(parsed.process.pid, parsed.process);
    this.listener?.(parsed.process, parsed.kind);
  }
}
