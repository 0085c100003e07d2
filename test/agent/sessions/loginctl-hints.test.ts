import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoginctlHints, loginctlBlocks } from '../../../agent/sessions/loginctl-hints';
import { LogindSessions, type UserSession } from '../../../agent/sessions/session-directory';
import type { CommandRunner } from '../../../agent/os/command-runner';
import { tempDir } from '../../support/cli';
import { type LoginctlHintValues, loginctlShowSession, logindDesktop } from '../../support/logind';

const NOW = Date.parse('2026-11-23T09:15:00.000Z');
/** logind's timestamps: microseconds since the epoch, as `loginctl show-session` prints them. */
const usec = (iso: string) => String(BigInt(Date.parse(iso)) * 1000n);

const AMY: UserSession = { sessionId: '3', uid: 1000, user: 'amy', active: true, remote: false, kind: 'graphical' };
const BEN_CONSOLE: UserSession = { sessionId: '4', uid: 1001, user: 'ben', active: true, remote: false, kind: 'text' };
const CARA: UserSession = { sessionId: '5', uid: 1002, user: 'cara', active: true, remote: false, kind: 'graphical' };

/**
 * Real logind session files in a folder, read by the real session directory,
 * and a runner that answers as loginctl does (test/support/logind.ts) from
 * what logind holds now, recording every run.
 */
function lab(files: string[], logind: Record<string, LoginctlHintValues>) {
  const dir = tempDir('logind');
  for (const id of files) logindDesktop(dir, id, 1000 + Number(id), `user${id}`);
  const calls: string[][] = [];
  const runner: CommandRunner = {
    run: async (file, args) => (calls.push([file, ...args]), file === 'loginctl' ? loginctlShowSession(args, logind) : { stdout: '', code: 1 }),
  };
  let clock = NOW;
  const hints = new LoginctlHints(runner, new LogindSessions(dir), { now: () => clock });
  return { hints, calls, logind, dir, advance: (ms: number) => (clock += ms) };
}

const PROPERTIES = ['-p', 'Id', '-p', 'LockedHint', '-p', 'IdleHint', '-p', 'IdleSinceHint'];

describe("logind's lock and idle hints, one loginctl for every session", () => {
  it('answers the lock and the idle time of every session in a tick from one run, without a shell', async () => {
    // Arrange: Amy at her desktop (locked, idle since 09:10 by her desktop's say), Ben at a text console (last key 09:00)
    const t = lab(['3', '4'], {
      '3': { LockedHint: 'yes', IdleHint: 'yes', IdleSinceHint: usec('2026-11-23T09:10:00.000Z') },
      '4': { LockedHint: 'no', IdleHint: 'no', IdleSinceHint: usec('2026-11-23T09:00:00.000Z') },
    });

    // Act: what the session watcher, then the logoff rule, ask in one tick
    const locks = [await t.hints.isLocked(AMY), await t.hints.isLocked(BEN_CONSOLE)];
    const idle = [await t.hints.idleSecondsOf(AMY), await t.hints.idleSecondsOf(BEN_CONSOLE)];

    // Assert
    expect(locks).toEqual([true, false]);
    // A desktop is idle since it said so; a text login from its last keystroke, whatever IdleHint says.
    expect(idle).toEqual([300, 900]);
    expect(t.calls).toEqual([['loginctl', 'show-session', '3', '4', ...PROPERTIES]]);
  });

  it('asks again on the next tick, and counts idle time at the moment it is asked for', async () => {
    const t = lab(['3'], { '3': { LockedHint: 'no', IdleHint: 'yes', IdleSinceHint: usec('2026-11-23T09:10:00.000Z') } });
    expect(await t.hints.idleSecondsOf(AMY)).toBe(300);
    t.advance(1_500);
    expect(await t.hints.idleSecondsOf(AMY)).toBe(301);
    expect(t.calls).toHaveLength(1);

    t.logind['3'] = { LockedHint: 'yes', IdleHint: 'no', IdleSinceHint: usec('2026-11-23T09:15:01.000Z') };
    t.advance(3_500);
    expect(await t.hints.isLocked(AMY)).toBe(true);
    expect(await t.hints.idleSecondsOf(AMY)).toBe(0);
    expect(t.calls).toHaveLength(2);
  });

  it('gives a session that has gone no answer, and still answers those listed after it', async () => {
    // Ben's session file is still there, but logind has ended his session: loginctl stops at it
    const t = lab(['3', '4', '5'], {
      '3': { LockedHint: 'no', IdleHint: 'no', IdleSinceHint: usec('2026-11-23T09:00:00.000Z') },
      '5': { LockedHint: 'yes', IdleHint: 'yes', IdleSinceHint: usec('2026-11-23T09:14:00.000Z') },
    });
    expect([await t.hints.isLocked(AMY), await t.hints.isLocked(BEN_CONSOLE), await t.hints.isLocked(CARA)]).toEqual([false, undefined, true]);
    expect([await t.hints.idleSecondsOf(AMY), await t.hints.idleSecondsOf(BEN_CONSOLE), await t.hints.idleSecondsOf(CARA)]).toEqual([0, undefined, 60]);
    expect(t.calls).toEqual([
      ['loginctl', 'show-session', '3', '4', '5', ...PROPERTIES],
      ['loginctl', 'show-session', '5', ...PROPERTIES],
    ]);
  });

  it('asks about a session the files do not list, and about one that appears within the tick, when someone asks', async () => {
    const t = lab([], { '3': { LockedHint: 'yes', IdleHint: 'no', IdleSinceHint: '0' } });
    expect(await t.hints.isLocked(AMY)).toBe(true);
    // Cara's file appears within the same tick: she is asked about on her own, not left unanswered.
    writeFileSync(join(t.dir, '5'), 'UID=1002\nUSER=cara\nACTIVE=1\nREMOTE=0\nTYPE=x11\nCLASS=user\n');
    expect(await t.hints.isLocked(CARA)).toBeUndefined();
    expect(t.calls).toEqual([
      ['loginctl', 'show-session', '3', ...PROPERTIES],
      ['loginctl', 'show-session', '5', ...PROPERTIES],
    ]);
  });

  it('cannot tell when logind answers nothing, and asks it at most twice a tick', async () => {
    const t = lab(['3', '4', '5'], {});
    expect(await t.hints.isLocked(AMY)).toBeUndefined();
    expect(await t.hints.idleSecondsOf(AMY)).toBeUndefined();
    expect(await t.hints.idleSecondsOf(BEN_CONSOLE)).toBeUndefined();
    expect(await t.hints.isLocked(CARA)).toBeUndefined();
    expect(t.calls).toEqual([
      ['loginctl', 'show-session', '3', '4', '5', ...PROPERTIES],
      ['loginctl', 'show-session', '4', '5', ...PROPERTIES],
    ]);
    const one = lab(['3'], {});
    expect(await one.hints.isLocked(AMY)).toBeUndefined();
    expect(await one.hints.idleSecondsOf(AMY)).toBeUndefined();
    expect(one.calls).toHaveLength(1);

    const broken = new LoginctlHints(
      {
        run: async () => {
          throw new Error('loginctl: did not finish within 10000 ms');
        },
      },
      { sessions: async () => [AMY] },
      { now: () => NOW },
    );
    expect(await broken.isLocked(AMY)).toBeUndefined();
    expect(await broken.idleSecondsOf(AMY)).toBeUndefined();
  });

  it('never puts a session id that could be read as an option on the command line', async () => {
    const t = lab(['3'], { '3': { LockedHint: 'yes', IdleHint: 'yes', IdleSinceHint: '1' } });
    expect(await t.hints.isLocked({ ...AMY, sessionId: '--all' })).toBeUndefined();
    expect(await t.hints.idleSecondsOf({ ...AMY, sessionId: '-H' })).toBeUndefined();
    expect(t.calls).toEqual([]);
  });

  it('reads only what it asked for: blocks by their Id, values it does not understand as cannot tell', async () => {
    expect([...loginctlBlocks('Id=3\nLockedHint=yes\n\nId=4\nLockedHint=no\n').keys()]).toEqual(['3', '4']);
    expect([...loginctlBlocks('LockedHint=yes\n\nId=--all\nLockedHint=no\n').keys()]).toEqual([]);
    const t = lab(['3'], {});
    const odd = new LoginctlHints(
      { run: async () => ({ stdout: 'Id=3\nLockedHint=maybe\nIdleHint=yes\nIdleSinceHint=Mon 2026-11-23\n\nId=9\nLockedHint=yes\n', code: 0 }) },
      new LogindSessions(t.dir),
      {
        now: () => NOW,
      },
    );
    expect(await odd.isLocked(AMY)).toBeUndefined();
    expect(await odd.idleSecondsOf(AMY)).toBeUndefined();
  });
});
