import { type CommandRunner, createExecFileRunner } from './command-runner';
import type * as PowerShell from './win32/powershell-session';

/**
 * The OS plumbing the capabilities share, built once by the composition root
 * and handed to each OS adapter it picks: one command runner, and on Windows
 * one PowerShell session for every query and action (USB, the check before a
 * kill, signers, the inventory), as its own doc promises. Before, the USB and
 * software adapters each started their own, two powershell.exe where one
 * does, because neither could see the other's.
 */
export interface OsPlumbing {
  readonly runner: CommandRunner;
  /** The one PowerShell session: made on the first ask (its process starts with its first script), the same one after. */
  powerShell(): PowerShell.PowerShellSession;
  /** Ends what was started; the owner calls it once every adapter has stopped. */
  close(): Promise<void>;
}

export interface OsPlumbingOptions {
  runner?: CommandRunner;
  /** Makes the session (tests count calls to it); default: powershell.exe. */
  startPowerShell?: () => PowerShell.PowerShellSession;
}

export function createOsPlumbing(options: OsPlumbingOptions = {}): OsPlumbing {
  const runner = options.runner ?? createExecFileRunner();
  let session: PowerShell.PowerShellSession | undefined;
  // Loaded only when asked for: an agent on Linux or macOS never carries the PowerShell framing.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const start = options.startPowerShell ?? (() => (require('./win32/powershell-session') as typeof PowerShell).spawnPowerShellSession());
  return {
    runner,
    powerShell: () => (session ??= start()),
    async close() {
      await session?.close();
    },
  };
}
