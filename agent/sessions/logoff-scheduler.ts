/**
 * Forced logoff: "Users must log off from the computer they are using at the
 * end of each session." Signs out a session left idle, after a countdown the
 * person can stop by touching the computer (or, where the policy allows, with
 * "I'm still here"), and every session at the end of the school day, after a
 * countdown nothing stops. The rule itself is `decideLogoff` in
 * `logoff-decision.ts`; this class observes, carries the decision out, and
 * records it.
 *
 * Wiring (the composition root owns the timer):
 *
 *     const logoff = new LogoffScheduler({
 *       policy: () => policy.current,
 *       sessions: deps.sessions.directory,
 *       idle,                                              // the agent's IdleReports
 *       idleHints: new LoginctlHints(runner, logind),      // Linux only; omit elsewhere
 *       control: deps.sessions.control,
 *       notices: { showTo: (uid, n) => personal[0]?.showTo(uid, n), withdraw: (id) => personal[0]?.withdraw(id) },
 *       record,
 *       logger,
 *       roleOf: async (s) => roleFor(policy.current, await groups.groupsOf(s.user)),   // optional
 *     });
 *     timers.push(setInterval(() => void logoff.tick(), 5_000));
 *     // in the tray answer dispatcher:
 *     if (logoff.isMine(a.noticeId)) return logoff.answer(a.noticeId, a.action, from);
 *
 * `tick()` never throws and skips a call that arrives while the last one is
 * still running. Decisions:
 * - **Remote sessions (ssh, remote desktop) are never signed out by this
 *   rule**, idle or end of day: they run no tray, so no countdown could warn
 *   them, and they are IT support's maintenance logins far more often than a
 *   pupil at the screen. The network manager's remote logoff ends them.
 * - **One `session.logoff` per logoff**, recorded once the outcome is known:
 *   `confirmed: true` when the session has left the session directory within
 *   `confirmWithinSeconds` (30) of the request, `confirmed: false` (and an
 *   error logged) when it is still there then, or at once when the OS refused.
 *   Two events for one logoff would count it twice in every report; the
 *   event's time is when the sign-out was asked for.
 * - **No second attempt** on a session whose sign-out failed: a countdown
 *   that ends in nothing, over and over, would only harass the person. The
 *   event and the log say it failed; the session is tried again only if it
 *   signs in anew.
 * - Idle time is the more idle of the tray's (fresh reports only: see
 *   `logoff-idle.ts`) and `idleHints` (logind's hint on Linux): the tray is
 *   the pupil's own program and cannot make a session look busy. Neither
 *   known means unknown: an unknown idle time never signs anyone out, and
 *   cancels an idle countdown already up.
 * - Only idle countdowns record `session.idle-warning`; an end-of-day
 *   countdown is not about idleness, and its `session.logoff` says why.
 */
import type { Policy } from '../../shared/policy/schema';
import { citeClause, settingsFor } from '../../shared/policy/resolve';
import type { NOTICE_ACTIONS, User } from '../../shared/protocol';
import type { Logger } from '../../node-common/logging';
import type { Recorder } from '../core/events';
import type { AnswerResult, PersonalNotices, TrayPeer } from '../core/notices';
import type { IdleReports } from './idle-reports';
import type { IdleHintSource } from './logind-idle-hint';
import { type Countdown, type LocalClock, decideLogoff, processLocalTime } from './logoff-decision';
import { moreIdle, trayIdleSeconds, withStillHere } from './logoff-idle';
import { LOGOFF_NOTICE_PREFIX, countdownNotice } from './logoff-notices';
import type { SessionControl } from './session-control';
import type { SessionDirectory, UserSession } from './session-directory';

type NoticeAction = (typeof NOTICE_ACTIONS)[number];
type LogoffReason = Countdown['kind'];

export interface LogoffSchedulerOptions {
  policy: () => Policy;
  /** Who is signed in; a signed-out session must leave it for the logoff to count as confirmed. */
  sessions: SessionDirectory;
  /** Idle time as each session's tray reports it. */
  idle: IdleReports;
  /** The OS's view of idle time (logind's idle hint on Linux), taken when it says more than the tray. */
  idleHints?: IdleHintSource;
  control: SessionControl;
  /** Where a countdown goes: the trays of the user it is for, only. */
  notices: PersonalNotices;
  record: Recorder;
  logger: Logger;
  now?: () => Date;
  /** The session's role in the policy; by default everyone has the policy's default role. */
  roleOf?: (session: UserSession) => Promise<string>;
  /** The local wall clock; by default the process's time zone. */
  localTime?: LocalClock;
  /** How long a signed-out session may take to leave the session directory before the logoff is reported unconfirmed. */
  confirmWithinSeconds?: number;
}

interface LogoffRecord {
  sessionId: string;
  reason: LogoffReason;
  time: string;
  clause: ReturnType<typeof citeClause>;
  user?: User;
}

type Tracked =
  | { phase: 'counting'; uid: number; role: string; countdown: Countdown; noticeId: string }
  | { phase: 'signing-out'; uid: number; noticeId: string; askedAt: number; logoff: LogoffRecord }
  /** The OS did not end it; left alone until it signs out. */
  | { phase: 'gave-up'; uid: number };

export class LogoffScheduler {
  private readonly tracked = new Map<string, Tracked>();
  private readonly stillHereAt = new Map<string, number>();
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly localTime: LocalClock;
  private readonly confirmWithinMs: number;
  private running = false;

  constructor(private readonly options: LogoffSchedulerOptions) {
    this.log = options.logger.child({ component: 'logoff' });
    this.now = options.now ?? (() => new Date());
    this.localTime = options.localTime ?? processLocalTime;
    this.confirmWithinMs = (options.confirmWithinSeconds ?? 30) * 1000;
  }

  /** Looks at every session once: starts, cancels and ends countdowns, and confirms sign-outs asked for earlier. */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.check();
    } catch (e) {
      this.log.error('the logoff check failed', { error: String(e) });
    } finally {
      this.running = false;
    }
  }

  isMine(noticeId: string): boolean {
    return noticeId.startsWith(LOGOFF_NOTICE_PREFIX);
  }

  /** "I'm still here" on a countdown: accepted from the countdown's own user, for an idle countdown, where the policy allows. */
  async answer(noticeId: string, action: NoticeAction, peer: TrayPeer): Promise<AnswerResult> {
    const found = [...this.tracked].find(([, t]) => t.phase === 'counting' && t.noticeId === noticeId);
    const [sessionId, tracked] = found ?? [];
    // Someone else's countdown looks the same as none at all: a tray learns nothing about other users.
    if (!sessionId || tracked?.phase !== 'counting' || peer.uid === undefined || peer.uid !== tracked.uid) {
      return { ok: false, code: 'INV_ERR_PERMISSION_NOT_FOUND', message: 'that countdown is not up for this user' };
    }
    if (action !== 'still-here') return { ok: false, code: 'INV_ERR_UNEXPECTED_MESSAGE', message: 'a countdown is answered with still-here' };
    if (tracked.countdown.kind === 'end-of-day') {
      return { ok: false, code: 'INV_ERR_LOGOFF_NOT_CANCELLABLE', message: 'the end of the school day cannot be put off' };
    }
    if (settingsFor(this.options.policy(), 'logoff', tracked.role).idle?.stillHereAccepted !== true) {
      return { ok: false, code: 'INV_ERR_LOGOFF_NOT_CANCELLABLE', message: 'the policy does not let "I’m still here" put off the logoff' };
    }
    this.stillHereAt.set(sessionId, this.now().getTime());
    this.tracked.delete(sessionId);
    this.options.notices.withdraw(noticeId);
    this.log.info('idle logoff put off: the user is still here', { sessionId, uid: tracked.uid });
    return { ok: true };
  }

  private async check(): Promise<void> {
    const now = this.now().getTime();
    const sessions = await this.options.sessions.sessions();
    const present = new Map(sessions.map((s) => [s.sessionId, s]));
    await this.confirmSignOuts(present, now);
    this.forgetGone(present);
    const policy = this.options.policy();
    for (const session of sessions) {
      if (session.remote) continue;
      await this.consider(session, sessions, policy, now);
    }
  }

  /** A sign-out counts once the session has left the directory; one still there after the bound is reported unconfirmed. */
  private async confirmSignOuts(present: ReadonlyMap<string, UserSession>, now: number): Promise<void> {
    for (const [sessionId, t] of [...this.tracked]) {
      if (t.phase !== 'signing-out') continue;
      if (present.get(sessionId)?.uid !== t.uid) {
        this.tracked.delete(sessionId);
        this.options.notices.withdraw(t.noticeId);
        await this.recordLogoff(t.logoff, true);
      } else if (now - t.askedAt >= this.confirmWithinMs) {
        this.tracked.set(sessionId, { phase: 'gave-up', uid: t.uid });
        this.options.notices.withdraw(t.noticeId);
        this.log.error('a session asked to sign out is still signed in', {
          sessionId,
          uid: t.uid,
          reason: t.logoff.reason,
          waitedSeconds: (now - t.askedAt) / 1000,
        });
        await this.recordLogoff(t.logoff, false);
      }
    }
  }

  /** A session that signed out by itself: its countdown goes with it. */
  private forgetGone(present: ReadonlyMap<string, UserSession>): void {
    for (const [sessionId, t] of [...this.tracked]) {
      if (present.get(sessionId)?.uid === t.uid) continue;
      if (t.phase === 'counting') this.options.notices.withdraw(t.noticeId);
      this.tracked.delete(sessionId);
    }
    for (const sessionId of [...this.stillHereAt.keys()]) if (!present.has(sessionId)) this.stillHereAt.delete(sessionId);
  }

  private async consider(session: UserSession, all: readonly UserSession[], policy: Policy, now: number): Promise<void> {
    const { sessionId } = session;
    const before = this.tracked.get(sessionId);
    if (before && before.phase !== 'counting') return;
    const role = await this.roleOf(session, policy);
    const settings = settingsFor(policy, 'logoff', role);
    const idleSeconds = settings.idle ? await this.idleOf(session, all, now) : undefined;
    // An answer may have come in while idle time was being read: decide on the state as it is now.
    const current = this.tracked.get(sessionId);
    if (current && current.phase !== 'counting') return;
    const decision = decideLogoff({ now, idleSeconds, settings, local: this.localTime(new Date(now)), countdown: current?.countdown });
    switch (decision.action) {
      case 'none':
        return;
      case 'start':
        return this.start(session, role, policy, decision.countdown, idleSeconds, current, now);
      case 'cancel':
        if (current) {
          this.tracked.delete(sessionId);
          this.options.notices.withdraw(current.noticeId);
          this.log.info('logoff countdown cancelled', { sessionId, uid: session.uid, why: decision.why });
        }
        return;
      case 'logoff':
        if (current) await this.signOut(session, current.noticeId, decision.reason, policy, role, now);
        return;
    }
  }

  private async start(
    session: UserSession,
    role: string,
    policy: Policy,
    countdown: Countdown,
    idleSeconds: number | undefined,
    replacing: Extract<Tracked, { phase: 'counting' }> | undefined,
    now: number,
  ): Promise<void> {
    const notice = countdownNotice(policy, role, session, countdown);
    if (replacing) this.options.notices.withdraw(replacing.noticeId);
    this.tracked.set(session.sessionId, { phase: 'counting', uid: session.uid, role, countdown, noticeId: notice.noticeId });
    this.options.notices.showTo(session.uid, notice);
    const logoffInSeconds = Math.max(0, Math.round((countdown.deadline - now) / 1000));
    this.log.info('logoff countdown started', { sessionId: session.sessionId, uid: session.uid, kind: countdown.kind, logoffInSeconds });
    if (countdown.kind !== 'idle') return;
    await this.options.record({
      type: 'session.idle-warning',
      severity: 'info',
      time: new Date(now).toISOString(),
      data: { sessionId: session.sessionId, idleSeconds: idleSeconds ?? 0, logoffInSeconds },
      clause: citeClause(policy, settingsFor(policy, 'logoff', role).clause),
      ...userOf(session, role),
    });
  }

  private async signOut(session: UserSession, noticeId: string, reason: LogoffReason, policy: Policy, role: string, now: number): Promise<void> {
    const logoff: LogoffRecord = {
      sessionId: session.sessionId,
      reason,
      time: new Date(now).toISOString(),
      clause: citeClause(policy, settingsFor(policy, 'logoff', role).clause),
      ...userOf(session, role),
    };
    // Set before the await: a tick or an answer arriving meanwhile must see that the countdown is over.
    this.tracked.set(session.sessionId, { phase: 'signing-out', uid: session.uid, noticeId, askedAt: now, logoff });
    try {
      await this.options.control.signOut({ sessionId: session.sessionId, uid: session.uid });
      this.log.info('asked the OS to sign a session out', { sessionId: session.sessionId, uid: session.uid, reason });
    } catch (e) {
      this.tracked.set(session.sessionId, { phase: 'gave-up', uid: session.uid });
      this.options.notices.withdraw(noticeId);
      this.log.error('could not sign a session out', { sessionId: session.sessionId, uid: session.uid, reason, error: String(e) });
      await this.recordLogoff(logoff, false);
    }
  }

  private async recordLogoff(logoff: LogoffRecord, confirmed: boolean): Promise<void> {
    await this.options.record({
      type: 'session.logoff',
      severity: confirmed ? 'notice' : 'warning',
      time: logoff.time,
      data: { sessionId: logoff.sessionId, reason: logoff.reason, confirmed },
      clause: logoff.clause,
      ...(logoff.user ? { user: logoff.user } : {}),
    });
  }

  private async roleOf(session: UserSession, policy: Policy): Promise<string> {
    if (!this.options.roleOf) return policy.roles.default;
    try {
      return await this.options.roleOf(session);
    } catch (e) {
      this.log.warn("could not find a user's role; the default role applies", { uid: session.uid, error: String(e) });
      return policy.roles.default;
    }
  }

  /**
   * The more idle of the tray's report and the OS's hint: the tray is the
   * pupil's own program, so a tray saying "idle 0" must not outrank logind
   * saying the session has been idle for an hour.
   */
  private async idleOf(session: UserSession, all: readonly UserSession[], now: number): Promise<number | undefined> {
    const tray = trayIdleSeconds(this.options.idle.all(), session, all, now);
    const hint = await this.options.idleHints?.idleSecondsOf(session).catch((e: unknown) => {
      this.log.warn('could not read the OS idle hint', { sessionId: session.sessionId, error: String(e) });
      return undefined;
    });
    const idle = moreIdle(tray, hint);
    return withStillHere(idle, this.stillHereAt.get(session.sessionId), now);
  }
}

/** The envelope's user: the account name is display only, the uid is what the OS knows it by. */
function userOf(session: UserSession, role: string): { user?: User } {
  return session.user ? { user: { name: session.user, osId: String(session.uid), role } } : {};
}
