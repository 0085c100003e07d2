import type { LogoffSettings } from '../../shared/policy/schema';

/**
 * The forced-logoff rule, a pure function of one session's observation and
 * its role's settings, so every case is testable without clocks or sessions.
 *
 * - **Idle**: the countdown goes up when the session has been idle for
 *   `afterMinutes*60 - warningSeconds`, and the logoff is at the end of it,
 *   when idle reaches `afterMinutes*60`. Any input after the countdown went up
 *   cancels it.
 * - **End of day**: on the listed weekdays, from `warningMinutes` before
 *   `time` until midnight, every session gets a countdown that activity does
 *   not cancel. A session signed in after `time` (a pupil who signs in at
 *   16:20) gets the same warning and is then signed out: the school day is
 *   over whenever they arrived, and signing them out at once, with no
 *   warning, would lose their work. A session still there after midnight on
 *   a day not listed is left alone.
 * - **A countdown always runs its whole warning period** from when it goes
 *   up. Normally it goes up exactly on time, so the logoff falls when the
 *   policy says; when the agent first sees a session late (it has just
 *   started, a tray's first report arrives, the computer woke from sleep, the
 *   session signed in during the window) the person still gets the full
 *   warning rather than none.
 * - An end-of-day countdown replaces an idle one: it cannot be put off, so it
 *   is the one the person must see.
 */

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** The wall clock where the computer is: the weekday and whole minutes since local midnight. */
export interface LocalTime {
  weekday: Weekday;
  minutesSinceMidnight: number;
}
export type LocalClock = (at: Date) => LocalTime;

/** The process's own time zone (the OS's, unless TZ says otherwise), which is the school's. */
export const processLocalTime: LocalClock = (at) => ({
  weekday: WEEKDAYS[at.getDay()]!,
  minutesSinceMidnight: at.getHours() * 60 + at.getMinutes(),
});

export type Countdown =
  /** `lastInputAt`: the input the countdown counts from (ms since the epoch); input after it is activity. */
  { kind: 'idle'; deadline: number; lastInputAt: number } | { kind: 'end-of-day'; deadline: number };

export interface LogoffObservation {
  /** ms since the epoch. */
  now: number;
  /** Seconds since the person last touched the keyboard or mouse; undefined when nothing can tell. */
  idleSeconds: number | undefined;
  settings: Pick<LogoffSettings, 'idle' | 'endOfDay'>;
  /** The wall clock at `now`. */
  local: LocalTime;
  /** The session's countdown, if one is up. */
  countdown: Countdown | undefined;
}

export type LogoffDecision =
  | { action: 'none' }
  | { action: 'start'; countdown: Countdown }
  /** `activity`: input since the countdown went up; `unknown`: idle time can no longer be read; `policy`: the policy no longer asks for it. */
  | { action: 'cancel'; why: 'activity' | 'unknown' | 'policy' }
  | { action: 'logoff'; reason: Countdown['kind'] };

/**
 * Idle time arrives in whole seconds and is counted on from the tray's last
 * report, so the same last input can appear up to two seconds later from one
 * look to the next; only input later than that is activity.
 */
export const ACTIVITY_TOLERANCE_MS = 3_000;

const NONE: LogoffDecision = { action: 'none' };

export function decideLogoff(o: LogoffObservation): LogoffDecision {
  const { now, settings, countdown } = o;
  const endOfDay = endOfDayDue(settings.endOfDay, o.local);

  if (countdown?.kind === 'end-of-day') {
    if (!settings.endOfDay) return { action: 'cancel', why: 'policy' };
    return now >= countdown.deadline ? { action: 'logoff', reason: 'end-of-day' } : NONE;
  }

  if (countdown?.kind === 'idle') {
    if (!settings.idle) return { action: 'cancel', why: 'policy' };
    // Without idle time there is no telling whether the person came back; signing them out on old news would be wrong.
    if (o.idleSeconds === undefined) return { action: 'cancel', why: 'unknown' };
    if (lastInput(now, o.idleSeconds) > countdown.lastInputAt + ACTIVITY_TOLERANCE_MS) return { action: 'cancel', why: 'activity' };
    if (now >= countdown.deadline) return { action: 'logoff', reason: 'idle' };
    return endOfDay ? startEndOfDay(now, endOfDay) : NONE;
  }

  if (endOfDay) return startEndOfDay(now, endOfDay);

  if (settings.idle && o.idleSeconds !== undefined) {
    const { afterMinutes, warningSeconds } = settings.idle;
    const warnAt = Math.max(0, afterMinutes * 60 - warningSeconds);
    if (o.idleSeconds >= warnAt) {
      return { action: 'start', countdown: { kind: 'idle', deadline: now + warningSeconds * 1000, lastInputAt: lastInput(now, o.idleSeconds) } };
    }
  }
  return NONE;
}

/** The end of the day applies now: its warning minutes, or any time after, until midnight, on a listed day. */
export function endOfDayDue(endOfDay: LogoffSettings['endOfDay'], local: LocalTime): NonNullable<LogoffSettings['endOfDay']> | undefined {
  if (!endOfDay || !endOfDay.days.includes(local.weekday)) return undefined;
  const [hours, minutes] = endOfDay.time.split(':').map(Number) as [number, number];
  // A warning that would start before midnight (a 00:30 end of day) starts at midnight instead: the day's list says which days count.
  const warnFrom = Math.max(0, hours * 60 + minutes - endOfDay.warningMinutes);
  return local.minutesSinceMidnight >= warnFrom ? endOfDay : undefined;
}

function startEndOfDay(now: number, endOfDay: NonNullable<LogoffSettings['endOfDay']>): LogoffDecision {
  return { action: 'start', countdown: { kind: 'end-of-day', deadline: now + endOfDay.warningMinutes * 60_000 } };
}

function lastInput(now: number, idleSeconds: number): number {
  return now - idleSeconds * 1000;
}
