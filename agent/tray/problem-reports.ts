import { createHash } from 'node:crypto';
import type { Policy } from '../../shared/policy/schema';
import type { TrayReport } from '../../shared/protocol';
import type { Logger } from '../../node-common/logging';
import type { Recorder } from '../core/events';
import type { NoticeSink } from '../core/notices';
import { tooManyReports, virusWarning } from './report-words';
import type { TrayPeer } from '../core/notices';
import type { ReportResult } from './tray-server';

/**
 * The rate for problem reports, per user (the socket's uid; the root-only
 * socket counts as one user): a burst of 5, then one more every 20 s (three a
 * minute). The same kind and words again within an hour is a repeat. At most
 * one virus warning on screen every 10 minutes, whoever reports. What is held
 * back is counted and recorded as `problem.held-back` every 5 minutes.
 */
export const REPORT_RATE = { burst: 5, refillSeconds: 20, repeatMinutes: 60, virusWarningMinutes: 10, heldBackMinutes: 5 } as const;

/** Users and remembered wordings kept; both far above a school computer's. */
const MAX_USERS = 1_000;
const MAX_WORDINGS = 200;

export interface ProblemReportsDeps {
  record: Recorder;
  policy: () => Policy;
  /** Every signed-in user's trays (for the virus warning); undefined before the channel is open. */
  notices: () => NoticeSink | undefined;
  /** What IT support needs to start: this computer, the agent's state, its last warnings. */
  systemDetails: (from: TrayPeer) => string;
  logger: Logger;
  now?: () => number;
}

interface Reporter {
  from: TrayPeer;
  tokens: number;
  refilledAt: number;
  /** When each wording (kind and normalised words, hashed) was last recorded. */
  wordings: Map<string, number>;
  /** Reports held back since `since`, not yet recorded as held back. */
  repeats: number;
  throttled: number;
  since: number | undefined;
  /** The refusal's words were sent in this spell of refusals. */
  told: boolean;
}

/**
 * "Report a problem", under a rate: one pupil pressing it a thousand times
 * must not put a thousand warnings on everyone's screen or a thousand alerts
 * in the outbox. Each report is recorded (`problem.reported`), or counted as a
 * repeat or as over the rate; either way the tray is answered.
 */
export class ProblemReports {
  private readonly reporters = new Map<string, Reporter>();
  private virusWarnedAt: number | undefined;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly deps: ProblemReportsDeps) {
    this.now = deps.now ?? Date.now;
    this.log = deps.logger.child({ component: 'problem-reports' });
  }

  /** Decides at once, in the order reports arrive; resolves once a recorded report is durably in the outbox. */
  async take(report: Pick<TrayReport, 'kind' | 'text'>, from: TrayPeer): Promise<ReportResult> {
    const now = this.now();
    const who = this.reporterOf(from, now);
    const wording = createHash('sha256')
      .update(`${report.kind}\n${report.text.trim().replace(/\s+/g, ' ').toLowerCase()}`)
      .digest('hex');
    const last = who.wordings.get(wording);
    if (last !== undefined && now - last < REPORT_RATE.repeatMinutes * 60_000) {
      who.repeats++;
      who.since ??= now;
      return { outcome: 'repeat' };
    }
    const refill = REPORT_RATE.refillSeconds * 1000;
    const earned = Math.floor((now - who.refilledAt) / refill);
    if (earned > 0) {
      who.tokens = Math.min(REPORT_RATE.burst, who.tokens + earned);
      who.refilledAt = who.tokens === REPORT_RATE.burst ? now : who.refilledAt + earned * refill;
    }
    if (who.tokens < 1) {
      who.throttled++;
      who.since ??= now;
      if (who.told) return { outcome: 'throttled' };
      who.told = true;
      this.log.warn('problem reports over the rate from one tray; counted, not recorded', { uid: from.uid });
      return { outcome: 'throttled', notice: tooManyReports() };
    }
    who.tokens--;
    who.told = false;
    who.wordings.delete(wording);
    who.wordings.set(wording, now);
    while (who.wordings.size > MAX_WORDINGS) who.wordings.delete(who.wordings.keys().next().value!);
    const policy = this.deps.policy();
    const warn =
      report.kind === 'virus' &&
      policy.failsafe.virusWarningNotice &&
      (this.virusWarnedAt === undefined || now - this.virusWarnedAt >= REPORT_RATE.virusWarningMinutes * 60_000);
    if (warn) this.virusWarnedAt = now;
    const severity = report.kind === 'virus' ? 'alert' : report.kind === 'upsetting' ? 'warning' : 'notice';
    const recording = this.deps.record({
      type: 'problem.reported',
      severity,
      time: new Date(now).toISOString(),
      data: { kind: report.kind, text: report.text, systemDetails: this.deps.systemDetails(from).slice(0, 16384) },
    });
    // The warning goes up now, with the report on its way to disk: it is about the room, not the record.
    if (warn) this.deps.notices()?.show(virusWarning(policy, `virus-${now}`));
    await recording;
    return { outcome: 'recorded' };
  }

  /** Records what each user had held back since the last time, once; called every few minutes and at stop. */
  async flush(): Promise<void> {
    const due = [...this.reporters.values()].filter((r) => r.since !== undefined);
    for (const r of due) {
      const { repeats, throttled, since } = r;
      r.repeats = 0;
      r.throttled = 0;
      r.since = undefined;
      await this.deps.record({
        type: 'problem.held-back',
        severity: 'notice',
        time: new Date(this.now()).toISOString(),
        data: { ...(describe(r.from) ? { from: describe(r.from) } : {}), repeats, throttled, since: new Date(since!).toISOString() },
      });
    }
  }

  private reporterOf(from: TrayPeer, now: number): Reporter {
    const key = from.uid === undefined ? 'root' : `uid-${from.uid}`;
    let who = this.reporters.get(key);
    if (!who) {
      who = { from, tokens: REPORT_RATE.burst, refilledAt: now, wordings: new Map(), repeats: 0, throttled: 0, since: undefined, told: false };
      this.reporters.set(key, who);
      // The oldest without counts waiting go first.
      for (const [k, r] of this.reporters) {
        if (this.reporters.size <= MAX_USERS) break;
        if (r.since === undefined && k !== key) this.reporters.delete(k);
      }
    }
    if (from.sessionId !== undefined) who.from = from;
    return who;
  }
}

/** Who reported, as the system details say it. */
export function describe(from: TrayPeer): string | undefined {
  return from.uid === undefined ? undefined : `the tray of uid ${from.uid}${from.sessionId ? `, session ${from.sessionId}` : ''}`;
}
