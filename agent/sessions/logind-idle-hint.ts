import type { CommandRunner } from '../os/command-runner';
import type { UserSession } from './session-directory';

/**
 * Idle time for a session that has no tray report: the OS's own view, where
 * it has one. Undefined means "cannot tell", never "not idle".
 */
export interface IdleHintSource {
  idleSecondsOf(session: UserSession): Promise<number | undefined>;
}

const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const USEC = /^\d{1,20}$/;

/**
 * What `loginctl show-session ID -p IdleHint -p IdleSinceHint` printed, as
 * idle seconds at `now` (ms since the epoch).
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

/**
 * Linux: logind's idle hint. Its session files in /run/systemd/sessions hold
 * no idle field (`session_save()` writes none: the hint lives only in logind's
 * memory and on D-Bus), so it is asked for with `loginctl show-session`, run
 * without a shell.
 */
export class LoginctlIdleHint implements IdleHintSource {
  constructor(
    private readonly runner: CommandRunner,
    private readonly now: () => number = Date.now,
  ) {}

  async idleSecondsOf(session: UserSession): Promise<number | undefined> {
    // The id goes on loginctl's command line: nothing that could be read as an option.
    if (!SESSION_ID.test(session.sessionId)) return undefined;
    const result = await this.runner
      .run('loginctl', ['show-session', session.sessionId, '-p', 'IdleHint', '-p', 'IdleSinceHint'], 5_000)
      .catch(() => undefined);
    if (!result || result.code !== 0) return undefined;
    return idleSecondsFromLoginctl(result.stdout, session.kind, this.now());
  }
}
