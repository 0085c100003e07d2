import { type Countdown, type LocalTime, type LogoffObservation, decideLogoff, processLocalTime } from '../../../agent/sessions/logoff-decision';
import type { LogoffSettings } from '../../../shared/policy/schema';

/** Basildon's pupils: idle 15 minutes with a minute's warning; the day ends at 16:00 on school days, warned 5 minutes before. */
const PUPILS: Pick<LogoffSettings, 'idle' | 'endOfDay'> = {
  idle: { afterMinutes: 15, warningSeconds: 60, stillHereAccepted: true },
  endOfDay: { time: '16:00', days: ['mon', 'tue', 'wed', 'thu', 'fri'], warningMinutes: 5 },
};
const NOW = Date.parse('2026-11-23T10:00:00.000Z');
const MONDAY_10AM: LocalTime = { weekday: 'mon', minutesSinceMidnight: 10 * 60 };
const at = (weekday: LocalTime['weekday'], hhmm: string): LocalTime => ({
  weekday,
  minutesSinceMidnight: Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3)),
});

function decide(o: Partial<LogoffObservation>) {
  return decideLogoff({ now: NOW, idleSeconds: 0, settings: PUPILS, local: MONDAY_10AM, countdown: undefined, ...o });
}

describe('the idle logoff rule', () => {
  it('puts the countdown up when idle reaches 15 minutes less the warning, for the whole warning', () => {
    expect(decide({ idleSeconds: 839 })).toEqual({ action: 'none' });
    expect(decide({ idleSeconds: 840 })).toEqual({
      action: 'start',
      countdown: { kind: 'idle', deadline: NOW + 60_000, lastInputAt: NOW - 840_000 },
    });
  });

  it('gives a session first seen long idle (the agent just started) the full warning, not an instant logoff', () => {
    expect(decide({ idleSeconds: 3600 })).toMatchObject({ action: 'start', countdown: { kind: 'idle', deadline: NOW + 60_000 } });
  });

  it('cancels the countdown on input after it went up, and not on the same input seen a second or two later', () => {
    const countdown: Countdown = { kind: 'idle', deadline: NOW + 30_000, lastInputAt: NOW - 870_000 };
    expect(decide({ countdown, idleSeconds: 0 })).toEqual({ action: 'cancel', why: 'activity' });
    // Whole-second reports counted on from the last one: the same last input, give or take 2 s.
    expect(decide({ countdown, idleSeconds: 868 })).toEqual({ action: 'none' });
  });

  it('signs out at the deadline, unless input came in just before it', () => {
    const countdown: Countdown = { kind: 'idle', deadline: NOW, lastInputAt: NOW - 900_000 };
    expect(decide({ countdown, idleSeconds: 900 })).toEqual({ action: 'logoff', reason: 'idle' });
    expect(decide({ countdown, idleSeconds: 1 })).toEqual({ action: 'cancel', why: 'activity' });
  });

  it('signs no one out on idle time it can no longer read, or when the policy drops the idle rule', () => {
    const countdown: Countdown = { kind: 'idle', deadline: NOW, lastInputAt: NOW - 900_000 };
    expect(decide({ countdown, idleSeconds: undefined })).toEqual({ action: 'cancel', why: 'unknown' });
    expect(decide({ idleSeconds: undefined })).toEqual({ action: 'none' });
    expect(decide({ countdown, idleSeconds: 900, settings: { ...PUPILS, idle: null } })).toEqual({ action: 'cancel', why: 'policy' });
    expect(decide({ idleSeconds: 5000, settings: { ...PUPILS, idle: null } })).toEqual({ action: 'none' });
  });
});

describe('the end-of-day rule', () => {
  it('warns from 15:55 on a school day and signs out five minutes later, however busy the person is', () => {
    expect(decide({ local: at('mon', '15:54') })).toEqual({ action: 'none' });
    const started = decide({ local: at('mon', '15:55') });
    expect(started).toEqual({ action: 'start', countdown: { kind: 'end-of-day', deadline: NOW + 300_000 } });

    const countdown: Countdown = { kind: 'end-of-day', deadline: NOW };
    expect(decide({ countdown, local: at('mon', '15:59'), now: NOW - 1000, idleSeconds: 0 })).toEqual({ action: 'none' });
    expect(decide({ countdown, local: at('mon', '16:00'), idleSeconds: 0 })).toEqual({ action: 'logoff', reason: 'end-of-day' });
  });

  it('leaves the weekend alone', () => {
    expect(decide({ local: at('sat', '16:00') })).toEqual({ action: 'none' });
    expect(decide({ local: at('sun', '23:59') })).toEqual({ action: 'none' });
  });

  it('gives someone who signs in after 16:00 the full warning, until midnight', () => {
    expect(decide({ local: at('mon', '16:20') })).toEqual({ action: 'start', countdown: { kind: 'end-of-day', deadline: NOW + 300_000 } });
    expect(decide({ local: at('fri', '23:59') })).toMatchObject({ action: 'start' });
    expect(decide({ local: at('tue', '00:00') })).toEqual({ action: 'none' });
  });

  it('replaces an idle countdown, and is never replaced by one', () => {
    const idle: Countdown = { kind: 'idle', deadline: NOW + 30_000, lastInputAt: NOW - 870_000 };
    expect(decide({ countdown: idle, idleSeconds: 870, local: at('mon', '15:55') })).toEqual({
      action: 'start',
      countdown: { kind: 'end-of-day', deadline: NOW + 300_000 },
    });
    const endOfDay: Countdown = { kind: 'end-of-day', deadline: NOW + 200_000 };
    expect(decide({ countdown: endOfDay, idleSeconds: 5000, local: at('mon', '15:57') })).toEqual({ action: 'none' });
  });

  it('is cancelled only when the policy no longer has an end of day', () => {
    const countdown: Countdown = { kind: 'end-of-day', deadline: NOW + 200_000 };
    expect(decide({ countdown, settings: { ...PUPILS, endOfDay: null }, local: at('mon', '15:57') })).toEqual({ action: 'cancel', why: 'policy' });
  });
});

describe('the local wall clock', () => {
  it("reads the weekday and minutes in the process's own time zone", () => {
    // Built from local parts, so the same in every time zone the tests run in.
    expect(processLocalTime(new Date(2026, 10, 23, 15, 55, 30))).toEqual({ weekday: 'mon', minutesSinceMidnight: 955 });
    expect(processLocalTime(new Date(2026, 10, 28, 0, 0, 0))).toEqual({ weekday: 'sat', minutesSinceMidnight: 0 });
  });
});
