import { InvigilatorError } from '../../shared/errors';
import type { SessionControl, SessionRef } from './session-control';
import type { SessionDirectory } from './session-directory';

export interface ConfirmOptions {
  /** How long the OS has to make the session go (default 30 s). */
  timeoutMs?: number;
  /** How often to look (default 1 s). */
  everyMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * A sign-out that counts only once the session has gone from the OS's list.
 * `loginctl terminate-session` and `logoff` return before the session is torn
 * down, and a session can survive them (a hung process, a policy that blocks
 * it); the network manager must then read `confirmed: false`, not a success.
 * Throws INV_ERR_SIGN_OUT_FAILED when the session is still there at the end,
 * which every caller already records as an unconfirmed logoff.
 */
export class ConfirmedSignOut implements SessionControl {
  private readonly timeoutMs: number;
  private readonly everyMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly inner: SessionControl,
    private readonly directory: SessionDirectory,
    options: ConfirmOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.everyMs = options.everyMs ?? 1_000;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()));
  }

  async signOut(session: SessionRef): Promise<void> {
    await this.inner.signOut(session);
    const looks = Math.max(1, Math.ceil(this.timeoutMs / this.everyMs) + 1);
    for (let i = 0; i < looks; i++) {
      const still = (await this.directory.sessions().catch(() => [])).some((s) => s.sessionId === session.sessionId && s.uid === session.uid);
      if (!still) return;
      if (i < looks - 1) await this.sleep(this.everyMs);
    }
    throw new InvigilatorError(
      'INV_ERR_SIGN_OUT_FAILED',
      `session ${session.sessionId} was still signed in ${Math.round(this.timeoutMs / 1000)} s after the sign-out`,
    );
  }
}
