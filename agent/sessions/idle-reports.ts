import type { TrayPeer } from '../core/notices';

export interface IdleReport {
  uid: number | undefined;
  sessionId: string | undefined;
  idleSeconds: number;
  /** When the tray said so (ms since the epoch): idle time grows between reports. */
  at: number;
}

/**
 * The idle time each session's tray last reported. A service cannot see a
 * desktop session's keyboard and mouse on every OS (Windows hides them from
 * session 0), so the tray, which runs in the session, tells the agent.
 */
export class IdleReports {
  private readonly latest = new Map<string, IdleReport>();

  constructor(private readonly now: () => number = Date.now) {}

  report(from: TrayPeer, idleSeconds: number): void {
    const key = from.sessionId ?? `uid-${from.uid ?? 'root'}`;
    this.latest.set(key, { uid: from.uid, sessionId: from.sessionId, idleSeconds, at: this.now() });
    // One entry per session signed in; a bound in case sessions come and go all day.
    if (this.latest.size > 1000) this.latest.delete(this.latest.keys().next().value!);
  }

  /** Idle seconds now for a session (or a user's trays, keyed `uid-N`), counting the time since the last report. */
  idleSecondsOf(key: string): number | undefined {
    const r = this.latest.get(key);
    return r && r.idleSeconds + Math.max(0, Math.floor((this.now() - r.at) / 1000));
  }

  all(): IdleReport[] {
    return [...this.latest.values()];
  }
}
