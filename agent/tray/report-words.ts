import type { TrayNotice } from '../../shared/protocol';
import { PROTOCOL_VERSION } from '../../shared/protocol/primitives';
import { citeClause } from '../../shared/policy/resolve';
import type { Policy } from '../../shared/policy/schema';

/** What the people at the computer read about problem reports: plain words a seven-year-old can follow. */

/** Basildon 3.7: a suspected virus puts a warning on every screen at this computer. */
export function virusWarning(policy: Policy, noticeId: string): TrayNotice {
  const contact = policy.notices.contact;
  return {
    v: PROTOCOL_VERSION,
    type: 'tray.notice',
    noticeId,
    kind: 'virus-warning',
    title: 'Please do not use this computer for now',
    body: `Someone thinks this computer may have a virus. ${contact.charAt(0).toUpperCase()}${contact.slice(1)} has been told. Please tell a grown-up and wait.`,
    ...(policy.failsafe.clause ? { clause: citeClause(policy, policy.failsafe.clause) } : {}),
    actions: ['dismiss'],
  };
}

/** To the tray that sent more reports than the rate allows, once per spell of refusals. */
export function tooManyReports(): TrayNotice {
  return {
    v: PROTOCOL_VERSION,
    type: 'tray.notice',
    noticeId: 'report-throttled',
    kind: 'information',
    title: 'Thank you: that is enough for now',
    body: 'Your reports have been passed on. You have sent a lot of them very quickly, so more will not be passed on for a few minutes. If something is wrong, tell a teacher now.',
    actions: ['dismiss'],
  };
}
