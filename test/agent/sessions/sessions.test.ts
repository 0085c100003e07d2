import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LogindSessions, SharedSessionRead, parseLogindSession } from '../../../agent/sessions/session-directory';
import { CommandSessionControl } from '../../../agent/sessions/session-control';
import { SIGN_OUT_COMMANDS } from '../../../cli/sessions-for';
import { loginctlSignOut } from '../../../agent/sessions/linux/sign-out';
import { IdleReports } from '../../../agent/sessions/idle-reports';
import type { CommandRunner } from '../../../agent/os/command-runner';
import type { SessionRef } from '../../../agent/sessions/session-control';
import { handleTrayMissing } from '../../../agent/sessions/tray-missing';
import type { EventDraft } from '../../../agent/core/events';
import { preset } from '../../../shared/policy/presets';
import type { Policy } from '../../../shared/policy/schema';
import { tempDir } from '../../support/cli';
import { AMY_DESKTOP } from '../../support/logind';
import { silentLogger } from '../../support/harness';

const GREETER = AMY_DESKTOP.replace('UID=1000', 'UID=113').replace('USER=amy', 'USER=lightdm').replace('CLASS=user', 'CLASS=greeter');
const SSH = AMY_DESKTOP.replace('UID=1000', 'UID=1001').replace('USER=amy', 'USER=ben').replace('TYPE=x11', 'TYPE=tty').replace('REMOTE=0', 'REMOTE=1');

describe('who is signed in, from logind', () => {
  it("reads each person's session and leaves out greeters and logind's own files", async () => {
    // Arrange: a sessions folder as logind keeps it, with its .ref FIFO names beside the files.
    const dir = tempDir('logind');
    writeFileSync(join(dir, '3'), AMY_DESKTOP);
    writeFileSync(join(dir, '3.ref'), '');
    writeFileSync(join(dir, 'c1'), GREETER);
    writeFileSync(join(dir, '7'), SSH);
    mkdirSync(join(dir, 'not-a-session.d'));

    // Act
    const logind = new LogindSessions(dir);
    const sessions = await logind.sessions();

    // Assert
    expect(sessions).toEqual([
      { sessionId: '3', uid: 1000, user: 'amy', active: true, remote: false, kind: 'graphical', since: '2026-11-23T08:00:00.000Z' },
      { sessionId: '7', uid: 1001, user: 'ben', active: true, remote: true, kind: 'text', since: '2026-11-23T08:00:00.000Z' },
    ]);
    // Ben's ssh login runs no tray: only Amy gets a tray socket.
    expect(await logind.list()).toEqual([1000]);
  });

  it('ignores files that are not sessions: no uid, a hostile name, a closing session, an absent folder', async () => {
    expect(parseLogindSession('3', 'USER=amy\n')).toBeUndefined();
    expect(parseLogindSession('../../etc', AMY_DESKTOP)).toBeUndefined();
    expect(parseLogindSession('3', AMY_DESKTOP.replace('STATE=active', 'STATE=closing'))).toBeUndefined();
    expect(parseLogindSession('3', 'UID=1000\n' + 'X'.repeat(20_000))).toBeUndefined();
    expect(await new LogindSessions(join(tempDir('logind'), 'missing')).sessions()).toEqual([]);
  });
});

describe('signing a session out', () => {
  /** A runner that records what it was asked to run and answers with the given exit code. */
  function recordingRunner(code = 0) {
    const calls: Array<{ file: string; args: string[] }> = [];
    const runner: CommandRunner = { run: async (file, args) => (calls.push({ file, args }), { stdout: '', code }) };
    return { runner, calls };
  }

  it("uses each OS's own command, without a shell", async () => {
    expect(SIGN_OUT_COMMANDS.linux({ sessionId: '3', uid: 1000 })).toEqual({ file: 'loginctl', args: ['terminate-session', '3'] });
    expect(SIGN_OUT_COMMANDS.win32({ sessionId: '2', uid: 0 })).toEqual({ file: 'logoff.exe', args: ['2'] });
    expect(SIGN_OUT_COMMANDS.darwin({ sessionId: 'console', uid: 501 })).toEqual({ file: '/bin/launchctl', args: ['bootout', 'gui/501'] });

    const { runner, calls } = recordingRunner();
    await new CommandSessionControl(loginctlSignOut, runner).signOut({ sessionId: '3', uid: 1000 });
    expect(calls).toEqual([{ file: 'loginctl', args: ['terminate-session', '3'] }]);
  });

  it('refuses a session id that could be read as an option or a path, and reports a command that failed', async () => {
    expect(() => SIGN_OUT_COMMANDS.linux({ sessionId: '--all', uid: 1000 })).toThrow(expect.objectContaining({ code: 'INV_ERR_SESSION_UNKNOWN' }));
    expect(() => SIGN_OUT_COMMANDS.linux({ sessionId: '3 4', uid: 1000 })).toThrow(expect.objectContaining({ code: 'INV_ERR_SESSION_UNKNOWN' }));
    expect(() => SIGN_OUT_COMMANDS.win32({ sessionId: 'console', uid: 0 })).toThrow(expect.objectContaining({ code: 'INV_ERR_SESSION_UNKNOWN' }));
    const { runner } = recordingRunner(1);
    await expect(new CommandSessionControl(loginctlSignOut, runner).signOut({ sessionId: '3', uid: 1000 })).rejects.toMatchObject({
      code: 'INV_ERR_SIGN_OUT_FAILED',
    });
  });
});

describe('idle time as the trays report it', () => {
  it('keeps the latest report per session and counts the time since', () => {
    let now = 1_000_000;
    const idle = new IdleReports(() => now);
    idle.report({ uid: 1000, sessionId: '3' }, 30);
    idle.report({ uid: 1000, sessionId: '3' }, 0);
    idle.report({ uid: 1001 }, 90);
    now += 45_000;
    expect(idle.idleSecondsOf('3')).toBe(45);
    expect(idle.idleSecondsOf('uid-1001')).toBe(135);
    expect(idle.idleSecondsOf('9')).toBeUndefined();
    expect(idle.all()).toHaveLength(2);
  });
});

describe('a user whose tray is missing', () => {
  const basildon = preset('basildon-primary')!;
  const strict: Policy = { ...basildon, logoff: { ...basildon.logoff, default: { ...basildon.logoff.default, onTrayMissing: 'logoff' } } };

  function setUp(policy: Policy) {
    const dir = tempDir('logind');
    writeFileSync(join(dir, '3'), AMY_DESKTOP);
    writeFileSync(join(dir, '8'), AMY_DESKTOP.replace('TYPE=x11', 'TYPE=tty').replace('REMOTE=0', 'REMOTE=1'));
    const events: EventDraft[] = [];
    const signedOut: SessionRef[] = [];
    const deps = {
      policy: () => policy,
      record: async (e: EventDraft) => void events.push(e),
      directory: new LogindSessions(dir),
      control: { signOut: async (s: SessionRef) => void signedOut.push(s) },
      logger: silentLogger(),
      now: () => new Date('2026-11-23T09:00:00.000Z'),
    };
    return { deps, events, signedOut };
  }

  it('is reported for her desktop session, not her ssh login, and left signed in where the policy says report', async () => {
    const t = setUp(basildon);
    await handleTrayMissing(t.deps, 1000, 125);
    expect(t.events).toEqual([{ type: 'tray.missing', severity: 'warning', time: '2026-11-23T09:00:00.000Z', data: { sessionId: '3', sinceSeconds: 125 } }]);
    expect(t.signedOut).toEqual([]);
  });

  it('signs her desktop session out where the policy says logoff, and records it', async () => {
    const t = setUp(strict);
    await handleTrayMissing(t.deps, 1000, 125);
    expect(t.signedOut).toEqual([{ sessionId: '3', uid: 1000 }]);
    expect(t.events.map((e) => [e.type, e.data])).toEqual([
      ['tray.missing', { sessionId: '3', sinceSeconds: 125 }],
      ['session.logoff', { sessionId: '3', reason: 'tray-missing', confirmed: true }],
    ]);
  });

  it('records an unconfirmed logoff when the OS refuses', async () => {
    const t = setUp(strict);
    await handleTrayMissing({ ...t.deps, control: { signOut: async () => Promise.reject(new Error('loginctl failed')) } }, 1000, 125);
    expect(t.events[1]).toMatchObject({ type: 'session.logoff', data: { confirmed: false } });
  });
});

describe('one read of the sessions shared within a tick', () => {
  it('asks the OS once for everything that looks within the time allowed, and again after it', async () => {
    let reads = 0;
    let now = 0;
    const inner = { sessions: async () => (reads++, [{ sessionId: '3', uid: 1000, user: 'amy', active: true, remote: false, kind: 'graphical' as const }]) };
    const shared = new SharedSessionRead(inner, 1000, () => now);

    const [a, b] = await Promise.all([shared.sessions(), shared.sessions()]);
    now = 999;
    await shared.sessions();
    now = 1000;
    await shared.sessions();

    expect(reads).toBe(2);
    expect(a).toEqual(b);
  });
});
