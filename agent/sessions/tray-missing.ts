import type { Policy } from '../../shared/policy/schema';
import { settingsFor } from '../../shared/policy/resolve';
import type { Logger } from '../../node-common/logging';
import type { Recorder } from '../core/events';
import type { SessionControl } from './session-control';
import type { SessionDirectory, UserSession } from './session-directory';

export interface TrayMissingDeps {
  policy: () => Policy;
  record: Recorder;
  directory?: SessionDirectory;
  control?: SessionControl;
  logger: Logger;
  now?: () => Date;
}

/** The sessions a tray runs in: desktops at this computer, not ssh or remote logins. */
export function traySessions(all: readonly UserSession[], uid: number): UserSession[] {
  return all.filter((s) => s.uid === uid && s.kind === 'graphical' && !s.remote);
}

/**
 * A signed-in user has had no tray for the policy's grace period: it never
 * started, or someone killed it. Enforcement does not depend on the tray, but
 * the person at the computer then sees no warnings, so the network manager is
 * told, and where the policy says `onTrayMissing: logoff` the desktop session
 * is ended (a pupil cannot opt out of countdowns by killing the tray).
 */
export async function handleTrayMissing(deps: TrayMissingDeps, uid: number, sinceSeconds: number): Promise<void> {
  const log = deps.logger.child({ component: 'tray-missing' });
  const time = () => (deps.now?.() ?? new Date()).toISOString();
  const all = (await deps.directory?.sessions().catch(() => [] as UserSession[])) ?? [];
  const desktops = traySessions(all, uid);
  const sessionIds = desktops.length > 0 ? desktops.map((s) => s.sessionId) : [`uid-${uid}`];
  for (const sessionId of sessionIds) {
    await deps.record({ type: 'tray.missing', severity: 'warning', time: time(), data: { sessionId, sinceSeconds } });
  }
  const policy = deps.policy();
  if (settingsFor(policy, 'logoff', policy.roles.default).onTrayMissing !== 'logoff') return;
  if (!deps.control) {
    log.warn('the policy signs out users without a tray, but this computer cannot sign anyone out', { uid });
    return;
  }
  for (const session of desktops) {
    let confirmed = true;
    try {
      await deps.control.signOut({ sessionId: session.sessionId, uid });
    } catch (e) {
      confirmed = false;
      log.error('could not sign out a user whose tray is missing', { uid, sessionId: session.sessionId, error: String(e) });
    }
    await deps.record({ type: 'session.logoff', severity: 'notice', time: time(), data: { sessionId: session.sessionId, reason: 'tray-missing', confirmed } });
  }
}
