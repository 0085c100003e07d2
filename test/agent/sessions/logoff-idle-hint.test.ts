import { LoginctlIdleHint, idleSecondsFromLoginctl } from '../../../agent/sessions/logind-idle-hint';
import type { UserSession } from '../../../agent/sessions/session-directory';
import type { CommandRunner } from '../../../agent/os/command-runner';

const NOW = Date.parse('2026-11-23T09:15:00.000Z');
/** logind's timestamps: microseconds since the epoch, as `loginctl show-session` prints them. */
const usec = (iso: string) => String(BigInt(Date.parse(iso)) * 1000n);

const BEN_CONSOLE: UserSession = { sessionId: '4', uid: 1001, user: 'ben', active: true, remote: false, kind: 'text' };
const AMY_DESKTOP: UserSession = { sessionId: '3', uid: 1000, user: 'amy', active: true, remote: false, kind: 'graphical' };

/** A runner that records what it was asked to run and answers as loginctl would. */
function recordingRunner(stdout: string, code = 0) {
  const calls: Array<{ file: string; args: string[] }> = [];
  const runner: CommandRunner = { run: async (file, args) => (calls.push({ file, args }), { stdout, code }) };
  return { runner, calls };
}

describe("logind's idle hint, for sessions without a tray report", () => {
  it('asks loginctl for the two properties, without a shell, and counts a text login idle from its last keystroke', async () => {
    // Arrange: Ben's console; his terminal was last read at 09:00
    const { runner, calls } = recordingRunner(`IdleHint=no\nIdleSinceHint=${usec('2026-11-23T09:00:00.000Z')}\n`);

    // Act
    const idle = await new LoginctlIdleHint(runner, () => NOW).idleSecondsOf(BEN_CONSOLE);

    // Assert: IdleHint stays "no" on a text login unless logind has an IdleAction; the time is what counts
    expect(calls).toEqual([{ file: 'loginctl', args: ['show-session', '4', '-p', 'IdleHint', '-p', 'IdleSinceHint'] }]);
    expect(idle).toBe(900);
  });

  it("takes a desktop's own hint: idle since it said so, not idle, or cannot tell when the desktop never says", () => {
    const since = usec('2026-11-23T09:10:00.000Z');
    expect(idleSecondsFromLoginctl(`IdleHint=yes\nIdleSinceHint=${since}\n`, 'graphical', NOW)).toBe(300);
    expect(idleSecondsFromLoginctl(`IdleSinceHint=${since}\nIdleHint=no\n`, 'graphical', NOW)).toBe(0);
    expect(idleSecondsFromLoginctl('IdleHint=no\nIdleSinceHint=0\n', 'graphical', NOW)).toBeUndefined();
  });

  it('cannot tell from output it does not understand, a failed loginctl, or a session id that could be an option', async () => {
    expect(idleSecondsFromLoginctl('IdleHint=yes\nIdleSinceHint=Mon 2026-11-23 09:00:00 UTC\n', 'text', NOW)).toBeUndefined();
    expect(idleSecondsFromLoginctl('', 'text', NOW)).toBeUndefined();

    const failed = recordingRunner('', 1);
    expect(await new LoginctlIdleHint(failed.runner, () => NOW).idleSecondsOf(AMY_DESKTOP)).toBeUndefined();

    const hostile = recordingRunner('IdleHint=yes\nIdleSinceHint=1\n');
    expect(await new LoginctlIdleHint(hostile.runner, () => NOW).idleSecondsOf({ ...AMY_DESKTOP, sessionId: '--all' })).toBeUndefined();
    expect(hostile.calls).toEqual([]);
  });
});
