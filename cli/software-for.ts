import type { Platform } from '../shared/protocol';
import type { Logger } from '../node-common/logging';
import { OsHomeFolders } from '../agent/sessions/home-folders';
import { getentHomes } from '../agent/sessions/linux/home-folder';
import { profileHomes } from '../agent/sessions/win32/home-folder';
import { usersHomes } from '../agent/sessions/darwin/home-folder';
import type * as PsSource from '../agent/software/programs/darwin/process-source-darwin';
import type * as ProcfsSource from '../agent/software/programs/linux/process-source-linux';
import type * as StartTraceSource from '../agent/software/programs/win32/process-source-win32';
import type * as Win32Signer from '../agent/software/programs/win32/process-signer-win32';
import type * as Taskkill from '../agent/software/programs/win32/taskkill';
import type * as Killer from '../agent/software/programs/process-killer';
import type * as LinuxPrograms from '../agent/software/programs/linux/programs-os';
import type * as Win32Programs from '../agent/software/programs/win32/programs-os';
import type * as DarwinPrograms from '../agent/software/programs/darwin/programs-os';
import type * as LinuxDownloads from '../agent/software/downloads/linux/folders';
import type * as Win32Downloads from '../agent/software/downloads/win32/folders';
import type * as DarwinDownloads from '../agent/software/downloads/darwin/folders';
import type { OsPlumbing } from '../agent/os/plumbing';
import type * as LinuxInventory from '../agent/software/installed/linux/inventory-linux';
import type * as Win32Inventory from '../agent/software/installed/win32/inventory-win32';
import type * as DarwinInventory from '../agent/software/installed/darwin/inventory-darwin';

/**
 * This OS's software-control adapters and facts, chosen once: /proc on
 * Linux, one long-lived PowerShell watching Win32_ProcessStartTrace on
 * Windows (with Authenticode signers and taskkill, and the re-check before a
 * kill and the inventory through the agent's one PowerShell session, shared
 * with USB), `ps` on macOS; how each ends a process; where each lists its
 * installed programs; and each OS's facts (`os`: whose process is a
 * person's, which folders to watch and how paths compare), so that nothing
 * below this file asks which OS it runs on. Another OS's modules are never
 * loaded (issue 14: the idle agent's memory).
 */
/* eslint-disable @typescript-eslint/no-require-imports */
export function softwareFor(platform: Platform, os: OsPlumbing, logger: Logger, control: 'enforce' | 'observe') {
  const { runner } = os;
  switch (platform) {
    case 'linux': {
      const { ProcfsProcessSource } = require('../agent/software/programs/linux/process-source-linux') as typeof ProcfsSource;
      const { LinuxPackageInventory } = require('../agent/software/installed/linux/inventory-linux') as typeof LinuxInventory;
      const { signalKiller } = require('../agent/software/programs/process-killer') as typeof Killer;
      const { LINUX_PROGRAMS } = require('../agent/software/programs/linux/programs-os') as typeof LinuxPrograms;
      const { LINUX_DOWNLOADS } = require('../agent/software/downloads/linux/folders') as typeof LinuxDownloads;
      return {
        control,
        processes: new ProcfsProcessSource({ logger }),
        killer: signalKiller,
        os: { programs: LINUX_PROGRAMS, downloads: LINUX_DOWNLOADS },
        homes: new OsHomeFolders(getentHomes(runner, logger)),
        inventory: new LinuxPackageInventory(runner),
      };
    }
    case 'win32': {
      const { StartTraceProcessSource } = require('../agent/software/programs/win32/process-source-win32') as typeof StartTraceSource;
      const { win32SignerOf } = require('../agent/software/programs/win32/process-signer-win32') as typeof Win32Signer;
      const { taskkillKiller } = require('../agent/software/programs/win32/taskkill') as typeof Taskkill;
      const { RegistryInventory } = require('../agent/software/installed/win32/inventory-win32') as typeof Win32Inventory;
      const { WIN32_PROGRAMS } = require('../agent/software/programs/win32/programs-os') as typeof Win32Programs;
      const { WIN32_DOWNLOADS } = require('../agent/software/downloads/win32/folders') as typeof Win32Downloads;
      const queries = os.powerShell();
      return {
        control,
        processes: new StartTraceProcessSource({ queries, logger }),
        killer: taskkillKiller(runner),
        os: { programs: WIN32_PROGRAMS, downloads: WIN32_DOWNLOADS },
        signerOf: win32SignerOf(queries),
        homes: new OsHomeFolders(profileHomes),
        inventory: new RegistryInventory(queries),
      };
    }
    case 'darwin': {
      const { PsProcessSource } = require('../agent/software/programs/darwin/process-source-darwin') as typeof PsSource;
      const { BundleInventory } = require('../agent/software/installed/darwin/inventory-darwin') as typeof DarwinInventory;
      const { signalKiller } = require('../agent/software/programs/process-killer') as typeof Killer;
      const { DARWIN_PROGRAMS } = require('../agent/software/programs/darwin/programs-os') as typeof DarwinPrograms;
      const { DARWIN_DOWNLOADS } = require('../agent/software/downloads/darwin/folders') as typeof DarwinDownloads;
      return {
        control,
        processes: new PsProcessSource({ runner, logger }),
        killer: signalKiller,
        os: { programs: DARWIN_PROGRAMS, downloads: DARWIN_DOWNLOADS },
        homes: new OsHomeFolders(usersHomes),
        inventory: new BundleInventory({ runner }),
      };
    }
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */
