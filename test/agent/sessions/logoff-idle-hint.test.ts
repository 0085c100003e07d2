import { idleSecondsFromLoginctl } from '../../../agent/sessions/logind-idle-hint';

const NOW = Date.parse('2026-11-23T09:15:00.000Z');
/** logind's timestamps: microseconds since the epoch, as `loginctl show-session` prints them. */
const usec = (iso: string) => String(BigInt(Date.parse(iso)) * 1000n);

describe("logind's idle hint, for sessions without a tray report", () => {
  it('counts a text login idle from its last keystroke, whatever IdleHint says', () => {
    // IdleHint stays "no" on a text login unless logind has an IdleAction; the time is what counts
    expect(idleSecondsFromLoginctl(`IdleHint=no\nIdleSinceHint=${usec('2026-11-23T09:00:00.000Z')}\n`, 'text', NOW)).toBe(900);
  });

  it("takes a desktop's own hint: idle since it said so, not idle, or cannot tell when the desktop never says", () => {
    const since = usec('2026-11-23T09:10:00.000Z');
    expect(idleSecondsFromLoginctl(`IdleHint=yes\nIdleSinceHint=${since}\n`, 'graphical', NOW)).toBe(300);
    expect(idleSecondsFromLoginctl(`IdleSinceHint=${since}\nIdleHint=no\n`, 'graphical', NOW)).toBe(0);
    expect(idleSecondsFromLoginctl('IdleHint=no\nIdleSinceHint=0\n', 'graphical', NOW)).toBeUndefined();
  });

  it('cannot tell from output it does not understand', () => {
    expect(idleSecondsFromLoginctl('IdleHint=yes\nIdleSinceHint=Mon 2026-11-23 09:00:00 UTC\n', 'text', NOW)).toBeUndefined();
    expect(idleSecondsFromLoginctl('', 'text', NOW)).toBeUndefined();
  });
});
