import type { Policy } from '../shared/policy/schema';
import type { Platform } from '../shared/protocol';
import type { Logger } from '../node-common/logging';
import type { AgreementKeeper } from './aup/agreement-keeper';
import type { SessionAdapters, SoftwareAdapters, UsbAdapters } from './capabilities';
import type { AgentConfig } from './config';
import type { EventDraft } from './core/events';
import type { NoticeSink } from './core/notices';
import type { DEFAULT_LINK_TUNING, Link } from './link/link';
import type { Outbox } from './outbox/outbox';
import type { PolicyKeeper } from './policy-keeper';
import type { IdleReports } from './sessions/idle-reports';
import type { SignedInUsers } from './sessions/session-directory';
import type { UsbGuard } from './usb/usb-guard';

/** What the composition root (cli/commands/agent.ts) gives the agent: settings, and this OS's adapters per capability. */
export interface AgentDeps {
  /** The capabilities' settings are the composition root's: it turns them into the adapters below. */
  config: Omit<AgentConfig, 'usb' | 'tray' | 'sessions' | 'software'>;
  fallbackPolicy: Policy;
  logger: Logger;
  platform: Platform;
  version: string;
  /** Batch size, window, heartbeat and backoff; the defaults suit a school. */
  linkTuning?: Partial<typeof DEFAULT_LINK_TUNING>;
  /** This OS's USB adapter, chosen by the composition root; absent: no USB control. */
  usb?: UsbAdapters;
  /** Where notices for the person at the computer go; by default the tray channel at `trayPath`. */
  notices?: NoticeSink;
  /** The tray channel's socket or pipe; absent with no `notices`: notices are only logged. */
  trayPath?: string;
  /** A tray socket for each signed-in user (Linux, macOS): its folder and who is signed in. */
  userTrays?: { dir: string; users: SignedInUsers };
  /**
   * Who is signed in, and how to sign someone out: this OS's adapters. Absent:
   * no sessions, login limit, agreement or logoff on this computer.
   */
  sessions?: SessionAdapters;
  /** This OS's software adapters; absent: no software control. `observe` decides and reports as audit, stopping and quarantining nothing. */
  software?: SoftwareAdapters;
  /** Called once the collector has enrolled this device and its identity is saved (the composition root forgets the token). */
  onEnrolled?: (deviceId: string) => void;
  /** How often sessions are read and the login limit and logoff rules looked at (default 5 s). */
  sessionPollMs?: number;
}

export interface RunningAgent {
  readonly outbox: Outbox;
  readonly link: Link;
  readonly policy: PolicyKeeper;
  readonly usb: UsbGuard | undefined;
  /** The acceptable-use agreements answered on this computer; absent without a session adapter. */
  readonly agreements: AgreementKeeper | undefined;
  /** The idle time each user's tray last reported. */
  readonly idle: IdleReports;
  /** Records an event: durably in the outbox first, then the link sends it. */
  record(draft: EventDraft): Promise<void>;
  stop(reason: string): Promise<void>;
}
