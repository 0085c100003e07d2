import type { Policy } from '../../shared/policy/schema';
import { citeClause, settingsFor } from '../../shared/policy/resolve';
import type { TrayNotice } from '../../shared/protocol';
import { PROTOCOL_VERSION } from '../../shared/protocol/primitives';
import type { Countdown } from './logoff-decision';
import type { UserSession } from './session-directory';

/** Every countdown notice's id starts so; answers to them go to the logoff scheduler. */
export const LOGOFF_NOTICE_PREFIX = 'logoff-';

/**
 * One id per countdown, so an answer to a countdown that has since been
 * replaced cannot cancel the new one. Session ids may hold `_`, which notice
 * ids may not.
 */
export function countdownNoticeId(sessionId: string, countdown: Countdown): string {
  return `${LOGOFF_NOTICE_PREFIX}${countdown.kind}-${sessionId.replace(/_/g, '.')}-${countdown.deadline.toString(36)}`.slice(0, 128);
}

/** The countdown window's content: why, when, and (for idle, where the policy allows) "I'm still here". */
export function countdownNotice(policy: Policy, role: string, session: UserSession, countdown: Countdown): TrayNotice {
  const settings = settingsFor(policy, 'logoff', role);
  const stillHere = countdown.kind === 'idle' && settings.idle?.stillHereAccepted === true;
  const words =
    countdown.kind === 'idle'
      ? {
          title: 'Are you still there?',
          body: `Nobody has used this computer for a while, so it will sign you out soon. ${
            stillHere ? 'Press "I’m still here", or move the mouse, to stay signed in.' : 'Move the mouse or press a key to stay signed in.'
          }`,
        }
      : {
          title: 'Time to sign out',
          body: 'The school day is over, so this computer will sign you out soon. Save your work now.',
        };
  return {
    v: PROTOCOL_VERSION,
    type: 'tray.notice',
    noticeId: countdownNoticeId(session.sessionId, countdown),
    kind: 'logoff-countdown',
    title: words.title,
    body: words.body,
    clause: citeClause(policy, settings.clause),
    // Trays show a user's notices in every session of theirs: say which one is meant when it is not the desktop.
    ...(session.kind === 'graphical' ? {} : { subject: `Your other sign-in on this computer (session ${session.sessionId})` }),
    actions: stillHere ? ['still-here'] : [],
    deadline: new Date(countdown.deadline).toISOString(),
  };
}
