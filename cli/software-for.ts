import type { Platform } from '../shared/protocol';
import type { Logger } from '../node-common/logging';
import { OsHomeFolders } from '../agent/sessions/home-folders';
import { PsProcessSource } from '../agent/software/process-source-darwin';
import { ProcfsProcessSource } from '../agent/software/process-source-linux';
import { StartTraceProcessSource } from '../agent/software/process-source-win32';
import { win32SignerOf } from '../agent/software/process-signer-win32';
import { taskkillKiller } from '../agent/software/process-killer';
import type { CommandRunner } from '../agent/usb/command-runner';
import { LinuxPackageInventory } from '../agent/software/inventory-linux';
import { RegistryInventory } from '../agent/software/inventory-win32';
import { BundleInventory } from '../agent/software/inventory-darwin';
import { spawnPowerShellSession } from '../agent/usb/win32/powershell-session';

/**
 * This OS's software-control adapters, chosen once: /proc on Linux, one
 * long-lived PowerShell watching Win32_ProcessStartTrace on Windows (with
 * Authenticode signers and taskkill), `ps` on macOS; and where each lists
 * its installed programs.
 */
export function softwareFor(platform: Platform, runner: CommandRunner, logger: Logger, control: 'enforce' | 'observe') {
  const homes = new OsHomeFolders(platform, runner);
  switch (platform) {
    case 'linux':
      return { control, processes: new ProcfsProcessSource({ logger }), homes, inventory: new LinuxPackageInventory(runner) };
    case 'win32': {
      const queries = spawnPowerShellSession();
      return {
        control,
        processes: new StartTraceProcessSource({ queries, logger }),
        killer: taskkillKiller(runner),
        signerOf: win32SignerOf(queries),
        homes,
        inventory: new RegistryInventory(queries),
      };
    }
    case 'darwin':
      return { control, processes: new PsProcessSource({ runner, logger }), homes, inventory: new BundleInventory({ runner }) };
  }
}
