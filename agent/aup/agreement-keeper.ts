import { join } from 'node:path';
import { z } from 'zod';
import type { Policy } from '../../shared/policy/schema';
import { citeClause } from '../../shared/policy/resolve';
import type { TrayNotice, TrayToAgent } from '../../shared/protocol';
import { PROTOCOL_VERSION } from '../../shared/protocol/primitives';
import type { Logger } from '../../node-common/logging';
import { JsonStateFile } from '../core/state-file';
import type { Recorder } from '../core/events';
import type { SessionControl } from '../sessions/session-control';
import type { SessionDirectory, UserSession } from '../sessions/session-directory';
import type { AnswerResult, PersonalNotices, TrayPeer } from '../core/notices';

type TrayAnswer = Extract<TrayToAgent, { type: 'tray.answer' }>;

const agreement = z.strictObject({
  uid: z.number().int().min(0),
  user: z.string().max(256),
  policyId: z.string().max(128),
  revision: z.number().int().min(0),
  decision: z.enum(['agreed', 'declined']),
  sessionId: z.string().max(128),
  at: z.string().max(64),
});
export type Agreement = z.infer<typeof agreement>;
const agreementsFile = z.strictObject({ agreements: z.array(agreement).max(100_000) });

/** Every notice this keeper puts up starts so; answers to them come here. */
export const AGREEMENT_NOTICE_PREFIX = 'aup-';

/** What the decision decides: the same for everyone on one computer under one policy revision. */
export function agreementNoticeId(policy: Policy, uid: number): string {
  return `${AGREEMENT_NOTICE_PREFIX}${uid}-${policy.id}-r${policy.revision}`.slice(0, 128);
}

/** The agreement window's content: the policy's own summary, its clause, and what saying no does. */
export function agreementNotice(policy: Policy, uid: number): TrayNotice {
  const ifNo =
    policy.aup.onDecline === 'logoff'
      ? 'If you choose "I do not agree", you will be signed out of this computer.'
      : `If you choose "I do not agree", ${policy.notices.contact} will be told.`;
  return {
    v: PROTOCOL_VERSION,
    type: 'tray.notice',
    noticeId: agreementNoticeId(policy, uid),
    kind: 'aup-agreement',
    title: 'Our rules for school computers',
    body: `${policy.aup.summary}\n\n${ifNo}`.slice(0, 2000),
    clause: citeClause(policy, policy.aup.clause),
    actions: ['agree', 'decline'],
  };
}

export interface AgreementKeeperOptions {
  dataDir: string;
  policy: () => Policy;
  notices: PersonalNotices;
  record: Recorder;
  sessions: SessionDirectory;
  control: SessionControl;
  logger: Logger;
  now?: () => Date;
}

/**
 * The acceptable-use agreement: asked of each user at their first login and
 * again on each new policy revision (Impero and NetSupport DNA do the same at
 * logon). Who agreed to which revision, and when, is kept on this computer
 * and recorded as an event, so the network manager can show it. Declining is
 * recorded; it signs the user out when the policy says so.
 */
export class AgreementKeeper {
  private readonly file: JsonStateFile<z.infer<typeof agreementsFile>>;
  private agreements: Agreement[] = [];
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(private readonly options: AgreementKeeperOptions) {
    this.file = new JsonStateFile(join(options.dataDir, 'aup-agreements.json'), agreementsFile, () => ({ agreements: [] }), options.logger);
    this.log = options.logger.child({ component: 'aup' });
    this.now = options.now ?? (() => new Date());
  }

  async load(): Promise<void> {
    this.agreements = (await this.file.load()).agreements;
  }

  /** The latest answer of this user to this policy revision, if any. */
  answerOf(uid: number, policy = this.options.policy()): Agreement | undefined {
    for (let i = this.agreements.length - 1; i >= 0; i--) {
      const a = this.agreements[i]!;
      if (a.uid === uid && a.policyId === policy.id && a.revision === policy.revision) return a;
    }
    return undefined;
  }

  /**
   * A tray has said hello: its user is asked to agree unless they already
   * have to this revision. A user who declined (where declining does not sign
   * out) is asked again in each new session.
   */
  async onHello(peer: TrayPeer): Promise<void> {
    const policy = this.options.policy();
    if (!policy.aup.required || peer.uid === undefined) return;
    const answer = this.answerOf(peer.uid, policy);
    if (answer?.decision === 'agreed') return;
    if (answer?.decision === 'declined' && answer.sessionId === this.sessionOf(peer)) return;
    this.options.notices.showTo(peer.uid, agreementNotice(policy, peer.uid));
  }

  /** A new policy revision: everyone signed in is asked again. */
  async onPolicyChanged(): Promise<void> {
    const policy = this.options.policy();
    const signedIn = await this.options.sessions.sessions();
    for (const uid of new Set(signedIn.map((s) => s.uid))) {
      if (uid === 0) continue;
      if (!policy.aup.required || this.answerOf(uid, policy)?.decision === 'agreed') continue;
      this.options.notices.showTo(uid, agreementNotice(policy, uid));
    }
  }

  isMine(noticeId: string): boolean {
    return noticeId.startsWith(AGREEMENT_NOTICE_PREFIX);
  }

  async answer(answer: TrayAnswer, peer: TrayPeer): Promise<AnswerResult> {
    const policy = this.options.policy();
    const uid = peer.uid;
    // Only the person the agreement was put to can answer it, and only the current revision's.
    if (uid === undefined || answer.noticeId !== agreementNoticeId(policy, uid)) {
      return { ok: false, code: 'INV_ERR_PERMISSION_NOT_FOUND', message: 'that agreement is not up for this user' };
    }
    if (answer.action !== 'agree' && answer.action !== 'decline') {
      return { ok: false, code: 'INV_ERR_UNEXPECTED_MESSAGE', message: 'an agreement is answered with agree or decline' };
    }
    const session = await this.sessionFor(peer);
    const sessionId = this.sessionOf(peer);
    const user = session?.user || `uid ${uid}`;
    const at = this.now().toISOString();
    const decision = answer.action === 'agree' ? 'agreed' : 'declined';
    this.agreements.push({ uid, user, policyId: policy.id, revision: policy.revision, decision, sessionId, at });
    // One answer per user and revision is enough to prove who agreed; older ones stay for the record.
    if (this.agreements.length > 50_000) this.agreements.splice(0, this.agreements.length - 50_000);
    await this.file.save({ agreements: this.agreements });
    this.options.notices.withdraw(answer.noticeId);
    const base = { sessionId, user: user.slice(0, 256), uid, policyId: policy.id, version: policy.revision };
    if (decision === 'agreed') {
      await this.options.record({ type: 'aup.agreed', severity: 'info', time: at, data: base });
      return { ok: true };
    }
    const signOut = policy.aup.onDecline === 'logoff' && session !== undefined;
    await this.options.record({ type: 'aup.declined', severity: 'notice', time: at, data: { ...base, signedOut: signOut } });
    if (policy.aup.onDecline === 'logoff' && !session) this.log.warn('a user declined the agreement but their session is not known; not signed out', { uid });
    if (signOut) await this.signOut(session, policy);
    return { ok: true };
  }

  private async signOut(session: UserSession, policy: Policy): Promise<void> {
    const ref = { sessionId: session.sessionId, uid: session.uid };
    let confirmed = true;
    try {
      await this.options.control.signOut(ref);
    } catch (e) {
      confirmed = false;
      this.log.error('could not sign out a user who declined the agreement', { uid: session.uid, error: String(e) });
    }
    await this.options.record({
      type: 'session.logoff',
      severity: 'notice',
      time: this.now().toISOString(),
      data: { sessionId: session.sessionId, reason: 'aup-declined', confirmed },
    });
    this.log.info('signed out after the agreement was declined', { uid: session.uid, policy: policy.id, confirmed });
  }

  /** The session named by the tray (already checked to be the user's), or the user's only desktop session. */
  private async sessionFor(peer: TrayPeer): Promise<UserSession | undefined> {
    const all = await this.options.sessions.sessions().catch(() => [] as UserSession[]);
    if (peer.sessionId !== undefined) return all.find((s) => s.sessionId === peer.sessionId && s.uid === peer.uid);
    const desktops = all.filter((s) => s.uid === peer.uid && s.kind === 'graphical' && !s.remote);
    return desktops.length === 1 ? desktops[0] : undefined;
  }

  private sessionOf(peer: TrayPeer): string {
    return peer.sessionId ?? `uid-${peer.uid ?? 0}`;
  }
}
