import type { AgentContext, Capability } from '../core/capability';
import type { HomeFolders } from '../sessions/home-folders';
import { auditOnly } from './audit-only';
import { type SignedInUser, type WatchedFolder, watchedFolders } from './downloads/file-folders';
import { FileGuard } from './downloads/file-guard';
import { InventoryKeeper } from './installed/inventory-keeper';
import type { InventorySource } from './installed/inventory-source';
import type { ProcessKiller } from './programs/process-killer';
import type { ProcessSource } from './programs/process-source';
import { SoftwareGuard } from './programs/software-guard';
import type { SoftwareOs } from './software-os';

/**
 * Software control: this OS's process source (and killer, signer lookup),
 * and where users' homes are, chosen by the composition root. `observe`
 * decides and reports as audit, stopping and quarantining nothing.
 */
export interface SoftwareAdapters {
  control: 'enforce' | 'observe';
  processes: ProcessSource;
  killer: ProcessKiller;
  /** This OS's software facts (cli/software-for.ts): whose process is a person's, which folders, how paths compare. */
  os: SoftwareOs;
  signerOf?: (path: string) => Promise<string | undefined>;
  homes?: HomeFolders;
  /** The folders the file watch covers; default: this OS's (`os.downloads`, file-folders.ts) for the users signed in. */
  folders?: () => WatchedFolder[];
  /** Where the installed programs are listed (dpkg/rpm, the uninstall keys, app bundles); absent: no inventory. */
  inventory?: InventorySource;
}

/**
 * Software as a capability: programs started (the process guard), programs
 * downloaded (the file guard and its quarantine, `restore-file`), and the
 * programs installed (the inventory, `refresh-inventory`).
 */
export function softwareCapability(ctx: AgentContext, sw: SoftwareAdapters): Capability {
  const log = ctx.logger.child({ component: 'agent' });
  const { roster } = ctx;
  /** The signed-in users' homes, kept up to date by the session tick, for the folders the file watch covers. */
  let homes: SignedInUser[] = [];
  const roleOf = async (uid: number) => roster?.roleOfUid(uid) ?? ctx.policy().roles.default;
  const processes = new SoftwareGuard({
    policy: ctx.policy,
    source: sw.processes,
    record: ctx.record,
    notices: ctx.notices,
    roleOf,
    logger: ctx.logger,
    selfPids: () => [process.pid],
    control: sw.control,
    os: sw.os.programs,
    killer: sw.killer,
    ...(sw.signerOf ? { signerOf: sw.signerOf } : {}),
  });
  const files = new FileGuard({
    // A developer's own machine (`invigilator start`): every decision is made and reported as audit, nothing is
    // quarantined. The process guard has its own observe mode; the file guard is given an audit policy.
    policy: () => (sw.control === 'observe' ? auditOnly(ctx.policy()) : ctx.policy()),
    roleOf,
    record: ctx.record,
    notices: ctx.notices,
    dataDir: ctx.dataDir,
    folders: sw.folders ?? (() => watchedFolders({ os: sw.os.downloads, users: homes, env: process.env })),
    logger: ctx.logger,
    os: sw.os.downloads,
    userName: (uid) => roster?.byUid(uid)?.user,
  });
  const inventory = sw.inventory && new InventoryKeeper({ source: sw.inventory, dataDir: ctx.dataDir, record: ctx.record, logger: ctx.logger });
  return {
    name: 'software',
    commands: {
      'restore-file': async (command) => {
        const restored = await files.restore(command.quarantineId);
        return restored.ok ? undefined : { code: restored.code, message: restored.message };
      },
      ...(inventory
        ? {
            'refresh-inventory': async () => {
              const refreshed = await inventory.refresh();
              return refreshed.ok ? undefined : { code: refreshed.code, message: refreshed.message };
            },
          }
        : {}),
    },
    onPolicyChanged: () => processes.reconsiderAll(),
    onSessionsRead: async () => {
      const { homes: lookup } = sw;
      if (!lookup || !roster) return;
      const found = await Promise.all(
        roster
          .signedIn()
          .filter((x) => !x.remote)
          .map((x) => lookup.of(x)),
      );
      homes = [...new Map(found.filter((h): h is SignedInUser => h !== undefined).map((h) => [h.uid, h])).values()];
    },
    start: async () => {
      // Enforcement must not wait on, or fail with, the other rules.
      await processes.start().catch((e: unknown) => log.error('the process watch did not start', { error: String(e) }));
      await files.start().catch((e: unknown) => log.error('the file watch did not start', { error: String(e) }));
      // The first look lists every program; it runs in the background so that the agent's start does not wait on dpkg.
      if (inventory) void inventory.start();
    },
    stop: async () => {
      await processes.stop().catch(() => undefined);
      await files.stop().catch(() => undefined);
      await inventory?.stop().catch(() => undefined);
    },
  };
}
