import { randomUUID } from 'node:crypto';
import type { Policy } from '../../shared/policy/schema';
import { citeClause, settingsFor } from '../../shared/policy/resolve';
import type { CollectorToAgent, TrayNotice, TrayToAgent } from '../../shared/protocol';
import { PROTOCOL_VERSION } from '../../shared/protocol/primitives';
import type { Logger } from '../../node-common/logging';
import type { Recorder } from '../core/events';
import type { AnswerResult, PersonalNotices, TrayPeer } from '../core/notices';
import type { SessionControl } from './session-control';
import type { UserSession } from './session-directory';

type Verdict = Extract<CollectorToAgent, { type: 'login.verdict' }>;
type Other = Verdict['others'][number];
type TrayAnswer = Extract<TrayToAgent, { type: 'tray.answer' }>;
type LoginMessage = { type: 'login.claim' | 'login.renew' | 'login.release' | 'login.evict' } & Record<string, unknown>;

/** The agent's link as the login limit needs it. */
export interface LoginLink {
  /** False when the collector cannot be reached now. */
  sendLogin(message: LoginMessage): boolean;
  readonly ready: boolean;
}

export const LOGIN_LIMIT_NOTICE_PREFIX = 'login-limit-';
/** A claim with no verdict after this long is treated as made offline: the link went down under it. */
const VERDICT_TIMEOUT_MS = 30_000;

/**
 * Where a session stands:
 * - `claiming`: asked, no verdict yet;
 * - `granted`: holds a lease, renewed while the session lasts;
 * - `unverified`: signed in while the collector was unreachable and the policy allows that; claimed when it is back;
 * - `refused`: over the limit (or offline under `refuse`): the user has until `deadline` to choose.
 */
interface Held {
  session: UserSession;
  role: string;
  claimId: string;
  state: 'claiming' | 'granted' | 'unverified' | 'refused';
  claimedAt: number;
  /** Why a refused session is refused: over the limit, or no collector to ask. */
  refusal?: 'limit' | 'offline';
  deadline?: number;
  /**
   * The user's sessions on other computers, as the refused verdict listed them (name, since when
   * and the collector's reference for each); the notice offers them by index, never by id.
   */
  others: Other[];
}

export interface LoginLimitOptions {
  policy: () => Policy;
  link: LoginLink;
  notices: PersonalNotices;
  record: Recorder;
  control: SessionControl;
  logger: Logger;
  now?: () => number;
  newId?: () => string;
}

/**
 * At most N school devices per login (Basildon 3.7 "User ID and password").
 * The collector decides, since only it sees every device; this keeps each
 * session's lease: claimed at login, renewed while it lasts, released at
 * logout. A refused user is shown their other sessions and may sign out here
 * or end one of the others; with no choice within the grace period this
 * session is signed out. With the collector unreachable the policy's
 * `offline` rule applies: allow and claim once it is back (a refusal then
 * goes the same way), or refuse.
 */
export class LoginLimit {
  private readonly held = new Map<string, Held>();
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly newId: () => string;
  private lastRenew = 0;

  constructor(private readonly options: LoginLimitOptions) {
    this.log = options.logger.child({ component: 'login-limit' });
    this.now = options.now ?? Date.now;
    this.newId = options.newId ?? (() => `k-${randomUUID()}`);
  }

  private settings(role: string) {
    const policy = this.options.policy();
    return settingsFor(policy, 'loginLimit', policy.roles.definitions.some((d) => d.id === role) ? role : policy.roles.default);
  }

  /** Sessions and where they stand, for status and tests. */
  states(): Array<{ sessionId: string; state: Held['state'] }> {
    return [...this.held.values()].map((h) => ({ sessionId: h.session.sessionId, state: h.state }));
  }

  async sessionStarted(session: UserSession, role: string): Promise<void> {
    if (this.held.has(session.sessionId)) return;
    const held: Held = { session, role, claimId: this.newId(), state: 'claiming', claimedAt: this.now(), others: [] };
    this.held.set(session.sessionId, held);
    if (!this.sendClaim(held)) await this.offline(held);
  }

  async sessionEnded(sessionId: string): Promise<void> {
    const held = this.held.get(sessionId);
    if (!held) return;
    this.held.delete(sessionId);
    this.options.notices.withdraw(this.noticeId(held));
    if (held.state !== 'granted') return;
    // Unsent, the lease simply expires after leaseSeconds.
    this.options.link.sendLogin({ v: PROTOCOL_VERSION, type: 'login.release', sessionId });
    await this.options.record({ type: 'login-limit.released', severity: 'info', time: this.iso(), data: this.who(held) });
  }

  /** The collector's answer. A verdict for a claim we no longer hold (the session ended) is dropped. */
  async onVerdict(verdict: Verdict): Promise<void> {
    const held = [...this.held.values()].find((h) => h.claimId === verdict.claimId);
    if (!held) return;
    held.others = verdict.others.slice(0, 10);
    const limit = verdict.limit ?? 0;
    if (verdict.granted) {
      const was = held.state;
      held.state = 'granted';
      delete held.deadline;
      delete held.refusal;
      this.options.notices.withdraw(this.noticeId(held));
      if (was !== 'granted') await this.options.record({ type: 'login-limit.granted', severity: 'info', time: this.iso(), data: { ...this.who(held), limit } });
      return;
    }
    const first = held.state !== 'refused' || held.refusal !== 'limit';
    held.state = 'refused';
    held.refusal = 'limit';
    held.deadline ??= this.now() + this.settings(held.role).graceSeconds * 1000;
    // The references stay out of the record: they are the collector's to this computer alone.
    const others = held.others.map((o) => ({ hostname: o.hostname, since: o.since }));
    if (first) await this.options.record({ type: 'login-limit.denied', severity: 'warning', time: this.iso(), data: { ...this.who(held), limit, others } });
    this.options.notices.showTo(held.session.uid, this.refusalNotice(held, verdict.limit));
  }

  /**
   * The link is up again: every session claims again. Claims made offline are
   * decided now; a granted lease may have expired at the collector during the
   * outage, and a claim (idempotent there) restores it or, if the user's
   * places were taken meanwhile, refuses it by the same rule.
   */
  onLinkReady(): void {
    for (const held of this.held.values()) {
      if (held.state !== 'granted') held.claimedAt = this.now();
      this.sendClaim(held);
    }
    this.lastRenew = this.now();
  }

  /** Called every few seconds: renewals, verdicts that never came, and refusals whose time is up. */
  async tick(): Promise<void> {
    const now = this.now();
    const leaseSeconds = Math.min(...[...this.held.values()].map((h) => this.settings(h.role).leaseSeconds), 3600);
    if (now - this.lastRenew >= (leaseSeconds * 1000) / 3) this.renew();
    for (const held of [...this.held.values()]) {
      if (held.state === 'claiming' && now - held.claimedAt >= VERDICT_TIMEOUT_MS) await this.offline(held);
      if (held.state === 'refused' && held.deadline !== undefined && now >= held.deadline) await this.signOut(held);
    }
  }

  isMine(noticeId: string): boolean {
    return noticeId.startsWith(LOGIN_LIMIT_NOTICE_PREFIX);
  }

  async answer(answer: TrayAnswer, peer: TrayPeer): Promise<AnswerResult> {
    const held = [...this.held.values()].find((h) => this.noticeId(h) === answer.noticeId);
    // Only the refused user may choose, and only while refused.
    if (!held || held.state !== 'refused' || peer.uid !== held.session.uid) {
      return { ok: false, code: 'INV_ERR_SESSION_UNKNOWN', message: 'that login is not waiting for a choice' };
    }
    if (answer.action === 'sign-out-here') {
      await this.signOut(held);
      return { ok: true };
    }
    if (answer.action !== 'sign-out-other') return { ok: false, code: 'INV_ERR_UNEXPECTED_MESSAGE', message: 'a login limit is answered by signing out' };
    const index = /^other-(\d{1,2})$/.exec(answer.target ?? '')?.[1];
    const target = index === undefined ? undefined : held.others[Number(index)];
    if (!target?.ref) return { ok: false, code: 'INV_ERR_SESSION_UNKNOWN', message: 'that session is not one of the user’s others' };
    const sent = this.options.link.sendLogin({
      v: PROTOCOL_VERSION,
      type: 'login.evict',
      claimId: held.claimId,
      user: this.userOf(held),
      sessionId: held.session.sessionId,
      role: held.role,
      at: this.iso(),
      ref: target.ref,
    });
    if (!sent) return { ok: false, code: 'INV_ERR_BUSY', message: 'the school’s server cannot be reached just now' };
    this.log.info('asked the collector to end another session of a refused user', { sessionId: held.session.sessionId, other: target.hostname });
    return { ok: true };
  }

  private sendClaim(held: Held): boolean {
    return this.options.link.sendLogin({
      v: PROTOCOL_VERSION,
      type: 'login.claim',
      claimId: held.claimId,
      user: this.userOf(held),
      sessionId: held.session.sessionId,
      role: held.role,
      at: new Date(held.claimedAt).toISOString(),
    });
  }

  /** No collector to ask: the policy's offline rule. */
  private async offline(held: Held): Promise<void> {
    const settings = this.settings(held.role);
    if (settings.offline === 'allow-and-reconcile') {
      held.state = 'unverified';
      this.log.info('login allowed without the collector; it will be checked when the collector is back', { sessionId: held.session.sessionId });
      return;
    }
    if (held.state === 'refused') return;
    held.state = 'refused';
    held.refusal = 'offline';
    held.deadline = this.now() + settings.graceSeconds * 1000;
    await this.options.record({
      type: 'login-limit.denied',
      severity: 'warning',
      time: this.iso(),
      data: { ...this.who(held), limit: settings.maxDevices ?? 0, others: [] },
    });
    this.options.notices.showTo(held.session.uid, this.refusalNotice(held, settings.maxDevices));
  }

  private renew(): void {
    this.lastRenew = this.now();
    const sessionIds = [...this.held.values()].filter((h) => h.state === 'granted').map((h) => h.session.sessionId);
    if (sessionIds.length > 0) this.options.link.sendLogin({ v: PROTOCOL_VERSION, type: 'login.renew', sessionIds });
  }

  private async signOut(held: Held): Promise<void> {
    this.held.delete(held.session.sessionId);
    this.options.notices.withdraw(this.noticeId(held));
    let confirmed = true;
    try {
      await this.options.control.signOut({ sessionId: held.session.sessionId, uid: held.session.uid });
    } catch (e) {
      confirmed = false;
      this.log.error('could not sign out a session over the login limit', { sessionId: held.session.sessionId, error: String(e) });
    }
    await this.options.record({ type: 'session.logoff', severity: 'notice', time: this.iso(), data: { ...this.who(held), reason: 'login-limit', confirmed } });
  }

  private refusalNotice(held: Held, limit: number | null): TrayNotice {
    const policy = this.options.policy();
    const settings = this.settings(held.role);
    const minutes = Math.max(1, Math.round(settings.graceSeconds / 60));
    const body =
      held.refusal === 'offline'
        ? `This computer cannot reach the school's server to check where else you are signed in, and the school does not allow that. You will be signed out in about ${minutes} minute${minutes === 1 ? '' : 's'}.`
        : `You can be signed in on ${limit ?? 'only a few'} school computers at once, and you already are. Choose one to sign out, or sign out here. If you do nothing, you will be signed out here in about ${minutes} minute${minutes === 1 ? '' : 's'}.`;
    return {
      v: PROTOCOL_VERSION,
      type: 'tray.notice',
      noticeId: this.noticeId(held),
      kind: 'login-limit',
      title: held.refusal === 'offline' ? 'Your sign-in cannot be checked' : 'You are signed in on too many computers',
      body,
      clause: citeClause(policy, settings.clause),
      actions: held.refusal === 'offline' || !held.others.some((o) => o.ref) ? ['sign-out-here'] : ['sign-out-here', 'sign-out-other'],
      ...(held.deadline !== undefined ? { deadline: new Date(held.deadline).toISOString() } : {}),
      ...(held.refusal === 'limit' && held.others.length > 0
        ? { sessions: held.others.map((l, i) => ({ sessionId: `other-${i}`, hostname: l.hostname, since: l.since })) }
        : {}),
    };
  }

  private noticeId(held: Held): string {
    return `${LOGIN_LIMIT_NOTICE_PREFIX}${held.session.sessionId}`.slice(0, 128);
  }

  private userOf(held: Held) {
    return { name: held.session.user.slice(0, 256) || `uid-${held.session.uid}`, osId: String(held.session.uid), role: held.role };
  }

  private who(held: Held) {
    return { sessionId: held.session.sessionId, ...(held.session.user ? { user: held.session.user.slice(0, 256) } : {}) };
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}
