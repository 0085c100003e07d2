import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import type { EventDraft } from '../../../agent/core/events';
import { IdleReports } from '../../../agent/sessions/idle-reports';
import { type LocalClock, WEEKDAYS } from '../../../agent/sessions/logoff-decision';
import { LoginctlHints } from '../../../agent/sessions/loginctl-hints';
import { LogoffScheduler } from '../../../agent/sessions/logoff-scheduler';
import { CommandSessionControl } from '../../../agent/sessions/session-control';
import { loginctlSignOut } from '../../../agent/sessions/linux/sign-out';
import { LogindSessions, type UserSession } from '../../../agent/sessions/session-directory';
import type { CommandRunner } from '../../../agent/os/command-runner';
import { preset } from '../../../shared/policy/presets';
import type { Policy } from '../../../shared/policy/schema';
import type { TrayNotice } from '../../../shared/protocol';
import { tempDir } from '../../support/cli';
import { AMY_DESKTOP, type LoginctlHintValues, loginctlShowSession } from '../../support/logind';

const AMY = 1000;
const BEN = 1001;

/** Ben at the text console of the same PC: no desktop, so no tray. */
const BEN_CONSOLE = `# This is private data. Do not parse.
UID=1001
USER=ben
ACTIVE=0
IS_DISPLAY=0
STATE=online
REMOTE=0
TYPE=tty
ORIGINAL_TYPE=tty
CLASS=user
SCOPE=session-4.scope
FIFO=/run/systemd/sessions/4.ref
SEAT=seat0
TTY=/dev/tty2
SERVICE=login
VTNR=2
LEADER=2345
REALTIME=1795420800000000
MONOTONIC=22345678
`;
/** Ben signed in over ssh. */
const BEN_SSH = BEN_CONSOLE.replace('REMOTE=0', 'REMOTE=1\nREMOTE_HOST=10.0.0.5')
  .replace('TTY=/dev/tty2', 'TTY=/dev/pts/0')
  .replace('SERVICE=login', 'SERVICE=sshd')
  .replace('SEAT=seat0\n', '')
  .replace('VTNR=2\n', '');

/** logind's timestamps: microseconds since the epoch, as `loginctl show-session` prints them. */
const usec = (iso: string) => String(BigInt(Date.parse(iso)) * 1000n);

/** This computer's clock is set to UTC, so the wall clock in these tests is the ISO time's. */
const utcWallClock: LocalClock = (d) => ({ weekday: WEEKDAYS[d.getUTCDay()]!, minutesSinceMidnight: d.getUTCHours() * 60 + d.getUTCMinutes() });

const basildon = preset('basildon-primary')!;
/** Basildon, with "I'm still here" switched off. */
const noStillHere: Policy = {
  ...basildon,
  logoff: { ...basildon.logoff, default: { ...basildon.logoff.default, idle: { afterMinutes: 15, warningSeconds: 60, stillHereAccepted: false } } },
};

interface LabOptions {
  start: string;
  policy?: Policy;
  /** Amy is signed in at her desktop (session 3) with her tray running. */
  amy?: boolean;
  /** Other sessions, by id, in logind's file format. */
  others?: Record<string, string>;
  /** What `loginctl show-session ID -p IdleHint -p IdleSinceHint` prints, by session id; loginctl knows no others. */
  idleHints?: Record<string, string>;
  /** Whether logind ends a session it is asked to terminate. */
  logindEndsSessions?: boolean;
  terminateExitCode?: number;
  roleOf?: (session: UserSession) => Promise<string>;
}

/**
 * A lab PC: real logind session files in a folder, the real session
 * directory, sign-out and idle-hint adapters over a runner that records each
 * command and answers as loginctl would (removing the session's file when it
 * terminates one, as logind does). The agent ticks every 5 s on a fake clock;
 * Amy's tray reports her idle time every 30 s.
 */
function lab(o: LabOptions) {
  const start = Date.parse(o.start);
  let clock = start;
  const dir = tempDir('logind');
  if (o.amy !== false) writeFileSync(join(dir, '3'), AMY_DESKTOP);
  for (const [id, text] of Object.entries(o.others ?? {})) writeFileSync(join(dir, id), text);

  // What logind knows of each session's idleness, in loginctl's words.
  const hints: Record<string, LoginctlHintValues> = {};
  for (const [id, text] of Object.entries(o.idleHints ?? {}))
    hints[id] = Object.fromEntries(
      text
        .trim()
        .split('\n')
        .map((l) => l.split('=') as [string, string]),
    );
  const commands: Array<{ file: string; args: string[] }> = [];
  const runner: CommandRunner = {
    run: async (file, args) => {
      commands.push({ file, args });
      if (file === 'loginctl' && args[0] === 'terminate-session') {
        if (o.logindEndsSessions !== false) rmSync(join(dir, args[1]!), { force: true });
        return { stdout: '', code: o.terminateExitCode ?? 0 };
      }
      return file === 'loginctl' ? loginctlShowSession(args, hints) : { stdout: '', code: 1 };
    },
  };

  const shown: Array<{ uid: number; notice: TrayNotice }> = [];
  const withdrawn: string[] = [];
  const events: EventDraft[] = [];
  const errors: string[] = [];
  const logSink = new Writable({
    objectMode: true,
    write: (info: { level: string; message: string }, _encoding, done) => {
      if (info.level === 'error') errors.push(info.message);
      done();
    },
  });
  const idle = new IdleReports(() => clock);
  const scheduler = new LogoffScheduler({
    policy: () => o.policy ?? basildon,
    sessions: new LogindSessions(dir),
    idle,
    idleHints: new LoginctlHints(runner, new LogindSessions(dir), { now: () => clock }),
    control: new CommandSessionControl(loginctlSignOut, runner),
    notices: { showTo: (uid, notice) => shown.push({ uid, notice }), withdraw: (id) => withdrawn.push(id) },
    record: async (e) => void events.push(e),
    logger: winston.createLogger({ level: 'info', transports: [new winston.transports.Stream({ stream: logSink })] }),
    now: () => new Date(clock),
    localTime: utcWallClock,
    ...(o.roleOf ? { roleOf: o.roleOf } : {}),
  });

  const amy = { working: true, lastInput: clock, tray: o.amy !== false };
  const trayReports = (seconds: number) => idle.report({ uid: AMY, sessionId: '3' }, seconds);
  if (amy.tray) trayReports(0);

  return {
    scheduler,
    shown,
    withdrawn,
    events,
    errors,
    /** Every `loginctl terminate-session` the agent ran, in order. */
    signOuts: () => commands.filter((c) => c.args[0] === 'terminate-session'),
    commands,
    amyLeaves: () => void (amy.working = false),
    /** Amy moves the mouse; her tray reports it. */
    amyTouches: () => {
      amy.working = true;
      amy.lastInput = clock;
      trayReports(0);
    },
    amysTrayIsKilled: () => void (amy.tray = false),
    signsOut: (sessionId: string) => rmSync(join(dir, sessionId)),
    async passes(seconds: number): Promise<void> {
      for (let s = 0; s < seconds; s += 5) {
        clock += 5_000;
        if (amy.working) amy.lastInput = clock;
        if (amy.tray && (clock - start) % 30_000 === 0) trayReports(Math.floor((clock - amy.lastInput) / 1000));
        await scheduler.tick();
      }
    },
    now: () => new Date(clock).toISOString(),
  };
}

const AMYS_TRAY = { uid: AMY, sessionId: '3' };
const LOGGING_OFF = expect.objectContaining({ id: 'bps-logging-off', quote: expect.stringContaining('Users must log off') });
const AMY_PUPIL = { name: 'amy', osId: '1000', role: 'pupil' };

describe('the idle logoff', () => {
  it('puts a countdown up after 14 idle minutes and takes it down when Amy moves the mouse', async () => {
    // Arrange: Monday morning; Amy walks away from her desktop at 09:00
    const t = lab({ start: '2026-11-23T09:00:00.000Z' });
    t.amyLeaves();

    // Act: 13 minutes 55 seconds
    await t.passes(835);

    // Assert: nothing yet
    expect(t.shown).toEqual([]);

    // Act: 14 minutes, a minute before the policy's 15
    await t.passes(5);

    // Assert: a countdown for Amy's trays only, to 09:15, with "I'm still here" and the school's words; the warning recorded
    expect(t.shown).toEqual([
      {
        uid: AMY,
        notice: expect.objectContaining({ kind: 'logoff-countdown', deadline: '2026-11-23T09:15:00.000Z', actions: ['still-here'], clause: LOGGING_OFF }),
      },
    ]);
    expect(t.events).toEqual([
      {
        type: 'session.idle-warning',
        severity: 'info',
        time: '2026-11-23T09:14:00.000Z',
        data: { sessionId: '3', idleSeconds: 840, logoffInSeconds: 60 },
        clause: LOGGING_OFF,
        user: AMY_PUPIL,
      },
    ]);

    // Act: she comes back twenty seconds later and moves the mouse
    await t.passes(20);
    t.amyTouches();
    await t.passes(5);

    // Assert: the countdown goes, and she is not signed out
    expect(t.withdrawn).toEqual([t.shown[0]!.notice.noticeId]);
    await t.passes(120);
    expect(t.signOuts()).toEqual([]);
    expect(t.events).toHaveLength(1);
  });

  it('signs her out at 09:15 with loginctl terminate-session 3, and records it once logind has ended the session', async () => {
    // Arrange
    const t = lab({ start: '2026-11-23T09:00:00.000Z' });
    t.amyLeaves();
    await t.passes(895);
    expect(t.signOuts()).toEqual([]);

    // Act: the deadline
    await t.passes(5);

    // Assert: exactly the command logind needs; the logoff is recorded only when confirmed
    expect(t.signOuts()).toEqual([{ file: 'loginctl', args: ['terminate-session', '3'] }]);
    expect(t.events.map((e) => e.type)).toEqual(['session.idle-warning']);

    // Act: the next look
    await t.passes(5);

    // Assert: one event, timed at the sign-out; the countdown taken down so her next login does not see it
    expect(t.events[1]).toEqual({
      type: 'session.logoff',
      severity: 'notice',
      time: '2026-11-23T09:15:00.000Z',
      data: { sessionId: '3', reason: 'idle', confirmed: true },
      clause: LOGGING_OFF,
      user: AMY_PUPIL,
    });
    expect(t.withdrawn).toEqual([t.shown[0]!.notice.noticeId]);
    expect(t.errors).toEqual([]);
  });

  it('puts the logoff off when she presses "I’m still here", which counts as using the computer', async () => {
    // Arrange: a countdown is up
    const t = lab({ start: '2026-11-23T09:00:00.000Z' });
    t.amyLeaves();
    await t.passes(850);
    const { noticeId } = t.shown[0]!.notice;

    // Act: 09:14:10, she presses the button
    const result = await t.scheduler.answer(noticeId, 'still-here', AMYS_TRAY);

    // Assert
    expect(result).toEqual({ ok: true });
    expect(t.withdrawn).toEqual([noticeId]);

    // Act/Assert: even though her tray's reports still count from 09:00, the next countdown is 14 minutes after the press
    await t.passes(835);
    expect(t.shown).toHaveLength(1);
    expect(t.signOuts()).toEqual([]);
    await t.passes(5);
    expect(t.shown).toHaveLength(2);
    expect(t.shown[1]!.notice.deadline).toBe('2026-11-23T09:29:10.000Z');
  });

  it('refuses "I’m still here" where the policy does not accept it, and signs out at the deadline', async () => {
    // Arrange
    const t = lab({ start: '2026-11-23T09:00:00.000Z', policy: noStillHere });
    t.amyLeaves();
    await t.passes(840);
    const { notice } = t.shown[0]!;
    expect(notice.actions).toEqual([]);

    // Act: a tray sends the answer anyway
    const result = await t.scheduler.answer(notice.noticeId, 'still-here', AMYS_TRAY);

    // Assert
    expect(result).toMatchObject({ ok: false, code: 'INV_ERR_LOGOFF_NOT_CANCELLABLE' });
    expect(t.withdrawn).toEqual([]);
    await t.passes(60);
    expect(t.signOuts()).toEqual([{ file: 'loginctl', args: ['terminate-session', '3'] }]);
  });

  it("lets no one but Amy answer Amy's countdown, and only with still-here", async () => {
    // Arrange: Ben is signed in at the console too
    const t = lab({ start: '2026-11-23T09:00:00.000Z', others: { '4': BEN_CONSOLE } });
    t.amyLeaves();
    await t.passes(840);
    const amys = t.shown.find((s) => s.uid === AMY)!.notice.noticeId;

    // Act/Assert: Ben's tray, the root-only socket, a made-up id, and Amy with the wrong button
    expect(await t.scheduler.answer(amys, 'still-here', { uid: BEN, sessionId: '4' })).toMatchObject({ ok: false, code: 'INV_ERR_PERMISSION_NOT_FOUND' });
    expect(await t.scheduler.answer(amys, 'still-here', {})).toMatchObject({ ok: false, code: 'INV_ERR_PERMISSION_NOT_FOUND' });
    expect(await t.scheduler.answer('logoff-idle-3-0', 'still-here', AMYS_TRAY)).toMatchObject({ ok: false, code: 'INV_ERR_PERMISSION_NOT_FOUND' });
    expect(await t.scheduler.answer(amys, 'dismiss', AMYS_TRAY)).toMatchObject({ ok: false, code: 'INV_ERR_UNEXPECTED_MESSAGE' });

    // Assert: her countdown runs on
    expect(t.withdrawn).toEqual([]);
    await t.passes(60);
    expect(t.signOuts()).toEqual([{ file: 'loginctl', args: ['terminate-session', '3'] }]);
  });

  it('forgets the countdown of a session that signs out by itself', async () => {
    const t = lab({ start: '2026-11-23T09:00:00.000Z' });
    t.amyLeaves();
    await t.passes(840);

    t.signsOut('3');
    await t.passes(5);

    expect(t.withdrawn).toEqual([t.shown[0]!.notice.noticeId]);
    await t.passes(120);
    expect(t.signOuts()).toEqual([]);
    expect(t.events.map((e) => e.type)).toEqual(['session.idle-warning']);
  });

  it("gives staff their role's 30 minutes", async () => {
    const t = lab({ start: '2026-11-23T09:00:00.000Z', roleOf: async () => 'staff' });
    t.amyLeaves();

    await t.passes(1675);
    expect(t.shown).toEqual([]);
    await t.passes(5);

    expect(t.shown[0]!.notice.deadline).toBe('2026-11-23T09:30:00.000Z');
    expect(t.events[0]!.data).toEqual({ sessionId: '3', idleSeconds: 1680, logoffInSeconds: 120 });
  });
});

describe('idle time without a tray', () => {
  it("signs out Ben's idle text console from logind's idle hint, with the session named on the notice", async () => {
    // Arrange: Ben's console, last typed at 09:00 (logind's IdleSinceHint is his terminal's last read)
    const t = lab({
      start: '2026-11-23T09:00:00.000Z',
      amy: false,
      others: { '4': BEN_CONSOLE },
      idleHints: { '4': `IdleHint=no\nIdleSinceHint=${usec('2026-11-23T09:00:00.000Z')}\n` },
    });

    // Act
    await t.passes(900);

    // Assert
    expect(t.commands).toContainEqual({
      file: 'loginctl',
      args: ['show-session', '4', '-p', 'Id', '-p', 'LockedHint', '-p', 'IdleHint', '-p', 'IdleSinceHint'],
    });
    expect(t.shown).toEqual([
      { uid: BEN, notice: expect.objectContaining({ deadline: '2026-11-23T09:15:00.000Z', subject: expect.stringContaining('session 4') }) },
    ]);
    expect(t.signOuts()).toEqual([{ file: 'loginctl', args: ['terminate-session', '4'] }]);
  });

  it('does not sign out a pupil who killed her tray and is still working, when the desktop gives no idle hint', async () => {
    // Arrange: Amy's tray stops reporting at 09:00; her desktop (xfce) never sets logind's idle hint
    const t = lab({ start: '2026-11-23T09:00:00.000Z', idleHints: { '3': 'IdleHint=no\nIdleSinceHint=0\n' } });
    t.amysTrayIsKilled();

    // Act: an hour of work
    await t.passes(3600);

    // Assert: her last report (idle 0 at 09:00) is not counted on for ever
    expect(t.shown).toEqual([]);
    expect(t.signOuts()).toEqual([]);
  });

  it("falls back to the desktop's own idle hint once the tray's reports are stale", async () => {
    // Arrange: GNOME said Amy went idle at 09:05; her tray stopped at 09:00
    const t = lab({ start: '2026-11-23T09:00:00.000Z', idleHints: { '3': `IdleHint=yes\nIdleSinceHint=${usec('2026-11-23T09:05:00.000Z')}\n` } });
    t.amysTrayIsKilled();
    t.amyLeaves();

    // Act
    await t.passes(1135);
    expect(t.shown).toEqual([]);
    await t.passes(5);

    // Assert: 14 minutes after 09:05
    expect(t.shown[0]!.notice.deadline).toBe('2026-11-23T09:20:00.000Z');
  });
});

describe('idle time from the tray and from logind', () => {
  it("takes the more idle of the two: a pupil's own tray saying idle 0 does not outrank logind's hint", async () => {
    // Arrange: GNOME told logind Amy went idle at 09:00; her tray (hers to change) keeps saying 0
    const t = lab({ start: '2026-11-23T09:00:00.000Z', idleHints: { '3': `IdleHint=yes\nIdleSinceHint=${usec('2026-11-23T09:00:00.000Z')}\n` } });

    // Act
    await t.passes(840);

    // Assert: the countdown goes up at 09:14, as logind's idle time says
    expect(t.shown).toEqual([{ uid: AMY, notice: expect.objectContaining({ kind: 'logoff-countdown', deadline: '2026-11-23T09:15:00.000Z' }) }]);
  });

  it("keeps the tray's idle time when logind's says less (a desktop that never sets the hint)", async () => {
    const t = lab({ start: '2026-11-23T09:00:00.000Z', idleHints: { '3': 'IdleHint=no\nIdleSinceHint=0\n' } });
    t.amyLeaves();
    await t.passes(840);
    expect(t.shown).toEqual([{ uid: AMY, notice: expect.objectContaining({ kind: 'logoff-countdown' }) }]);
  });
});

describe('the end of the school day', () => {
  it('warns at 15:55 on a Monday and signs out at 16:00, however busy Amy is', async () => {
    // Arrange: Amy working away
    const t = lab({ start: '2026-11-23T15:50:00.000Z' });
    await t.passes(295);
    expect(t.shown).toEqual([]);

    // Act: 15:55
    await t.passes(5);

    // Assert: a countdown with no way to put it off; no idle warning recorded
    expect(t.shown).toEqual([
      {
        uid: AMY,
        notice: expect.objectContaining({ kind: 'logoff-countdown', title: 'Time to sign out', deadline: '2026-11-23T16:00:00.000Z', actions: [] }),
      },
    ]);
    expect(t.events).toEqual([]);
    expect(await t.scheduler.answer(t.shown[0]!.notice.noticeId, 'still-here', AMYS_TRAY)).toMatchObject({
      ok: false,
      code: 'INV_ERR_LOGOFF_NOT_CANCELLABLE',
    });

    // Act: she keeps working to 16:00
    await t.passes(295);
    expect(t.signOuts()).toEqual([]);
    await t.passes(5);

    // Assert
    expect(t.signOuts()).toEqual([{ file: 'loginctl', args: ['terminate-session', '3'] }]);
    await t.passes(5);
    expect(t.events).toEqual([
      {
        type: 'session.logoff',
        severity: 'notice',
        time: '2026-11-23T16:00:00.000Z',
        data: { sessionId: '3', reason: 'end-of-day', confirmed: true },
        clause: LOGGING_OFF,
        user: AMY_PUPIL,
      },
    ]);
  });

  it('leaves Amy alone at the weekend', async () => {
    const t = lab({ start: '2026-11-28T15:50:00.000Z' });

    await t.passes(3600);

    // Idle time is still read (logind's hint as well as the tray's); nobody is signed out
    expect(t.shown).toEqual([]);
    expect(t.signOuts()).toEqual([]);
  });

  it('gives a pupil who signs in at 16:20 the full five minutes, then signs her out', async () => {
    // Arrange: Amy signs in after the end of the day
    const t = lab({ start: '2026-11-23T16:20:00.000Z' });

    // Act: the agent's next look
    await t.passes(5);

    // Assert
    expect(t.shown[0]!.notice.deadline).toBe('2026-11-23T16:25:05.000Z');
    await t.passes(295);
    expect(t.signOuts()).toEqual([]);
    await t.passes(5);
    expect(t.signOuts()).toEqual([{ file: 'loginctl', args: ['terminate-session', '3'] }]);
  });

  it('leaves ssh logins alone, idle or not, at any time', async () => {
    // Arrange: Ben over ssh, idle since 08:00 by logind's account, through the end of the day
    const t = lab({
      start: '2026-11-23T15:50:00.000Z',
      amy: false,
      others: { '7': BEN_SSH },
      idleHints: { '7': `IdleHint=yes\nIdleSinceHint=${usec('2026-11-23T08:00:00.000Z')}\n` },
    });

    // Act
    await t.passes(1800);

    // Assert
    expect(t.shown).toEqual([]);
    expect(t.commands).toEqual([]);
  });
});

describe('a logoff that does not happen', () => {
  it('is recorded unconfirmed, with an error logged, when the session is still there 30 s later, and not tried again', async () => {
    // Arrange: logind accepts the request but the session lingers
    const t = lab({ start: '2026-11-23T09:00:00.000Z', logindEndsSessions: false });
    t.amyLeaves();
    await t.passes(900);
    expect(t.signOuts()).toHaveLength(1);

    // Act: 25 s, then 30 s after the request
    await t.passes(25);
    expect(t.events.map((e) => e.type)).toEqual(['session.idle-warning']);
    await t.passes(5);

    // Assert
    expect(t.events[1]).toMatchObject({
      type: 'session.logoff',
      severity: 'warning',
      time: '2026-11-23T09:15:00.000Z',
      data: { sessionId: '3', reason: 'idle', confirmed: false },
    });
    expect(t.errors).toEqual(['a session asked to sign out is still signed in']);
    expect(t.withdrawn).toEqual([t.shown[0]!.notice.noticeId]);

    // Assert: no second countdown, no second attempt
    await t.passes(1800);
    expect(t.shown).toHaveLength(1);
    expect(t.signOuts()).toHaveLength(1);
  });

  it('is recorded unconfirmed at once when the OS refuses', async () => {
    const t = lab({ start: '2026-11-23T09:00:00.000Z', logindEndsSessions: false, terminateExitCode: 1 });
    t.amyLeaves();

    await t.passes(900);

    expect(t.events[1]).toMatchObject({ type: 'session.logoff', time: '2026-11-23T09:15:00.000Z', data: { reason: 'idle', confirmed: false } });
    expect(t.errors).toEqual(['could not sign a session out']);
  });
});
