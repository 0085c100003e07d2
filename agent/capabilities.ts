import type * as AupCapability from './aup/aup-capability';
import type * as RosterModule from './core/roster';
import type * as SessionsCapability from './sessions/sessions-capability';
import type * as SoftwareCapability from './software/software-capability';
import type * as TrayCapability from './tray/tray-capability';
import type * as UsbCapability from './usb/usb-capability';

export type { SessionAdapters } from './sessions/sessions-capability';
export type { SoftwareAdapters } from './software/software-capability';
export type { UsbAdapters } from './usb/usb-capability';

/*
 * A capability the configuration leaves off is never loaded: its rules, the
 * schemas of its state files and its dependencies (chokidar) would only hold
 * memory in an agent that runs for months (issue 14: 2 MiB of the agent with
 * USB, sessions and software off, `ratioMinimal` in `npm run bench --
 * agent-idle`; test/cli/agent-footprint.test.ts). Each is required where the
 * composition root first builds it; the types above are erased.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
export const aup = () => require('./aup/aup-capability') as typeof AupCapability;
export const sessions = () => require('./sessions/sessions-capability') as typeof SessionsCapability;
export const software = () => require('./software/software-capability') as typeof SoftwareCapability;
export const tray = () => require('./tray/tray-capability') as typeof TrayCapability;
export const usb = () => require('./usb/usb-capability') as typeof UsbCapability;
// The roster asks the sessions capability who is signed in: without it there is nobody, and nothing to load.
export const roster = () => require('./core/roster') as typeof RosterModule;
/* eslint-enable @typescript-eslint/no-require-imports */
