import type { UserSession } from './session-directory';

/**
 * Idle time for a session that has no tray report: the OS's own view, where
 * it has one. Undefined means "cannot tell", never "not idle".
 */
export interface IdleHintSource {
  idleSecondsOf(session: UserSession): Promise<number | undefined>;
}

const USEC = /^\d{1,20}$/;

/**
 * What `loginctl show-session ID -p IdleHint -p IdleSinceHint` printed for one
 * session (`LoginctlHints` asks for every session at once), as idle seconds at
 * `now` (ms since the epoch).
 *
 * logind's meaning differs by session type (`session_get_idle_hint()` in
 * systemd's src/login/logind-session.c):
 * - a desktop sets the hint itself (GNOME and KDE after their own idle delay,
 *   through `SetIdleHint`), and `IdleSinceHint` is when the hint last changed.
 *   Idle since then when `IdleHint=yes`; not idle when `no`; a desktop that
 *   never sets the hint leaves `IdleSinceHint=0`, and then nothing can tell.
 *   The desktop's own delay before it says idle is not counted, so this errs
 *   towards signing out later, never earlier;
 * - a text login's `IdleSinceHint` is the last input on its terminal (the
 *   tty's atime, as `w` shows), whatever `IdleHint` says: that is only `yes`
 *   when logind itself has an `IdleAction` configured.
 *
 * `loginctl` prints `IdleSinceHint` as microseconds since the epoch (the
 * property's name ends neither in `Timestamp` nor `USec`, so it is not
 * formatted); `0` when unset.
 */
export function idleSecondsFromLoginctl(stdout: string, kind: UserSession['kind'], now: number): number | undefined {
  const fields = new Map<string, string>();
  for (const line of stdout.slice(0, 4096).split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  const hint = fields.get('IdleHint');
  const sinceText = fields.get('IdleSinceHint');
  if (sinceText === undefined || !USEC.test(sinceText)) return undefined;
  const since = Number(BigInt(sinceText) / 1000n);
  if (since === 0) return undefined;
  const idle = Math.max(0, Math.floor((now - since) / 1000));
  if (kind !== 'graphical') return idle;
  if (hint === 'yes') return idle;
  if (hint === 'no') return 0;
  return undefined;
}
