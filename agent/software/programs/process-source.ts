import type { Platform } from '../../../shared/protocol/primitives';

/**
 * A process as an OS adapter saw it start. Everything here came from the OS
 * (or from the process itself, for `comm`), so it is data, never trusted as
 * a claim about who the process is: the decision spares a process only on
 * what the process cannot choose (its pid, its resolved executable path).
 */
export interface ObservedProcess {
  pid: number;
  /** 0 when the OS did not say. */
  ppid: number;
  /** The executable's base name (of `path` where known, else what the OS reported), as reported: case kept, `.exe` kept. */
  name: string;
  /**
   * Linux only: the kernel's `comm` (15 characters at most, and settable by
   * the process itself), when it differs from `name`. A shebang script's comm
   * is the script's name while its executable is the interpreter. Matched by
   * denylists only, never used to spare a process.
   */
  comm?: string;
  /** The resolved executable path, when the OS gave it. */
  path?: string;
  /** Where the executable's bytes can be read, when not `path` (Linux: `/proc/<pid>/exe`, which works after the file was deleted or replaced). */
  readPath?: string;
  /** Linux and macOS: the real uid. Windows: the session number (see docs/architecture.md, "Sessions, per OS"). */
  uid?: number;
  /** The account name, when the OS gave it. */
  user?: string;
  /**
   * What makes this process this process and not a later one given the same
   * pid: the kernel's start time in clock ticks (Linux), the creation time
   * (Windows), `lstart` (macOS). Compared before a process is killed.
   */
  startKey: string;
  /** When the process started, ms since the epoch, where known. */
  startedAtMs?: number;
  /** A kernel thread (Linux `PF_KTHREAD`): never a program anyone ran. */
  kernelThread?: boolean;
  /**
   * Linux: the process runs in a mount namespace that is neither the agent's
   * nor init's (`unshare -m`, bubblewrap, a snap), where a path may name
   * another file than the one at that path on the computer.
   */
  mountNamespace?: 'private';
  /**
   * Linux, for a process in a private mount namespace: whether `path` names,
   * in the agent's own view, the very file the process runs (same device and
   * inode). False: the namespace put another file there (a tmpfs over
   * /usr/lib/systemd), so no folder may spare or approve it. Unset outside a
   * private namespace, where the kernel's path is the file's own.
   */
  pathVouched?: boolean;
  /** The executable is a loader (`ld-linux ./prog`): it is this; `name`, `path` and `readPath` are the program it runs. */
  via?: { kind: 'loader'; name: string; path: string };
  /** The program is a script interpreter running a script file (`python3 x.py`): the script, as the process sees it and where its bytes can be read. */
  script?: { name: string; path: string; readPath: string };
}

/** Why a process is being reported: it was there when watching started, it is new, or it ran a new program in place (`exec`). */
export type ProcessChange = 'present' | 'started' | 'exec';

export type ProcessListener = (process: ObservedProcess, change: ProcessChange) => void;

/**
 * Where new processes come from, one implementation per OS: `/proc` polling
 * (Linux), `Win32_ProcessStartTrace` through one long-lived PowerShell
 * (Windows), `ps` polling (macOS). The guard knows nothing else about the OS.
 */
export interface ProcessSource {
  readonly platform: Platform;
  /** Starts watching. Processes already running are reported first, as `present`. */
  start(listener: ProcessListener): Promise<void>;
  stop(): Promise<void>;
  /** Whether this very process (pid and start time) is still running: asked just before it is killed. */
  isSame(process: ObservedProcess): Promise<boolean>;
  /** The processes the source believes are running now (for deciding again after a policy change). */
  running(): ObservedProcess[];
}

/** Milliseconds between a process starting and the Linux source reporting it, at most: the goal is 2 s. */
export const LINUX_DEFAULT_INTERVAL_MS = 1000;
