import type { IdleReport } from './idle-reports';
import type { UserSession } from './session-directory';
import { traySessions } from './tray-missing';

/**
 * Trays report every 30 s. A report older than three of those means the tray
 * has stopped (killed, crashed): counting its idle time on would sign out a
 * person who is still working, so the OS's view is asked instead.
 */
export const TRAY_REPORT_FRESH_SECONDS = 90;

/**
 * The session's idle seconds at `now` from its tray's latest report, counted
 * on since the report, when the report is fresh. A tray that did not name its
 * session speaks for its user's only desktop at this computer, as the tray
 * channel assumes.
 */
export function trayIdleSeconds(
  reports: readonly IdleReport[],
  session: UserSession,
  all: readonly UserSession[],
  now: number,
  freshSeconds = TRAY_REPORT_FRESH_SECONDS,
): number | undefined {
  let report = reports.find((r) => r.sessionId === session.sessionId && r.uid === session.uid);
  if (!report) {
    const desktops = traySessions(all, session.uid);
    const only = desktops.length === 1 && desktops[0]!.sessionId === session.sessionId;
    report = only ? reports.find((r) => r.sessionId === undefined && r.uid === session.uid) : undefined;
  }
  if (!report) return undefined;
  const age = now - report.at;
  if (age > freshSeconds * 1000) return undefined;
  return report.idleSeconds + Math.max(0, Math.floor(age / 1000));
}

/** Of two views of a session's idle time, the more idle; undefined only when neither can tell. */
export function moreIdle(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.max(a, b);
}

/** "I'm still here" is input too: idle time can be no more than the seconds since it was pressed. */
export function withStillHere(idleSeconds: number | undefined, stillHereAt: number | undefined, now: number): number | undefined {
  if (idleSeconds === undefined || stillHereAt === undefined) return idleSeconds;
  return Math.min(idleSeconds, Math.max(0, Math.floor((now - stillHereAt) / 1000)));
}
