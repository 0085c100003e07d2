import type { Command } from '../../shared/protocol';
import type { ErrorCode } from '../../shared/errors';
import type { Recorder } from '../core/events';
import type { SessionControl } from './session-control';
import type { SessionDirectory, UserSession } from './session-directory';

type LogoffCommand = Extract<Command, { kind: 'logoff' }>;

/** Which sessions a logoff command names: one session, one user's (account names compared without case), or all. */
export function sessionsTargeted(all: readonly UserSession[], target: LogoffCommand['target']): UserSession[] {
  switch (target.scope) {
    case 'session':
      return all.filter((s) => s.sessionId === target.sessionId);
    case 'user':
      return all.filter((s) => s.user.toLowerCase() === target.user.toLowerCase());
    case 'device':
      return [...all];
  }
}

/**
 * The network manager's remote logoff, carried out here: each targeted
 * session is ended and `session.logoff` (reason `remote`) recorded. The
 * command fails, with a code the collector shows, when no session matched or
 * one could not be ended.
 */
export async function carryOutLogoff(
  command: LogoffCommand,
  deps: { directory: SessionDirectory; control: SessionControl; record: Recorder; now?: () => Date },
): Promise<{ code: ErrorCode; message: string } | undefined> {
  const targeted = sessionsTargeted(await deps.directory.sessions(), command.target);
  if (targeted.length === 0) return { code: 'INV_ERR_SESSION_UNKNOWN', message: 'no such session is signed in on this computer' };
  let failed = 0;
  for (const s of targeted) {
    let confirmed = true;
    try {
      await deps.control.signOut({ sessionId: s.sessionId, uid: s.uid });
    } catch {
      confirmed = false;
      failed++;
    }
    await deps.record({
      type: 'session.logoff',
      severity: 'notice',
      time: (deps.now?.() ?? new Date()).toISOString(),
      data: { sessionId: s.sessionId, ...(s.user ? { user: s.user.slice(0, 256) } : {}), reason: 'remote', confirmed },
    });
  }
  return failed === 0 ? undefined : { code: 'INV_ERR_SIGN_OUT_FAILED', message: `${failed} of ${targeted.length} sessions could not be ended` };
}
