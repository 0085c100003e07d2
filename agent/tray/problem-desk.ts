import { hostname, release } from 'node:os';
import type { Policy } from '../../shared/policy/schema';
import type { Platform, TrayReport } from '../../shared/protocol';
import { type Logger, recentWarnings } from '../../node-common/logging';
import type { Recorder } from '../core/events';
import type { NoticeSink, TrayPeer } from '../core/notices';
import { ProblemReports, REPORT_RATE, describe as describeReporter } from './problem-reports';
import type { ReportResult } from './tray-server';

export interface ProblemDeskDeps {
  record: Recorder;
  policy: () => Policy;
  notices: () => NoticeSink | undefined;
  logger: Logger;
  platform: Platform;
  version: string;
  /** The agent's state as a report shows it: the link's, and how many events are not yet sent. */
  agentState: () => { link: string; unsent: number };
}

/**
 * A problem reported from the tray: recorded with what IT support needs to
 * start (this computer, the agent's state, its last warnings), under a rate
 * per user, and for a suspected virus the on-screen warning Basildon 3.7 asks
 * for, when the policy says so (agent/tray/problem-reports.ts).
 */
export function openProblemDesk(deps: ProblemDeskDeps): { take: (r: TrayReport, from: TrayPeer) => Promise<ReportResult>; close(): Promise<void> } {
  const recent = recentWarnings(deps.logger);
  const reports = new ProblemReports({
    record: deps.record,
    policy: deps.policy,
    notices: deps.notices,
    logger: deps.logger,
    systemDetails: (from) => {
      const who = describeReporter(from);
      const state = deps.agentState();
      const policy = deps.policy();
      return [
        `computer: ${hostname()} (${deps.platform} ${release()})`,
        `agent: ${deps.version}; link: ${state.link}; unsent events: ${state.unsent}`,
        `policy: ${policy.id} revision ${policy.revision}`,
        ...(who ? [`reported from ${who}`] : []),
        'recent warnings and errors:',
        ...recent.lines(),
      ].join('\n');
    },
  });
  // What was held back is recorded every few minutes, and at stop. Unref'd: this
  // timer runs on every agent, and must not keep alive one whose link and outbox are closed.
  const timer = setInterval(() => void reports.flush().catch(() => undefined), REPORT_RATE.heldBackMinutes * 60_000).unref();
  return {
    take: (r, from) => reports.take(r, from),
    close: async () => {
      clearInterval(timer);
      recent.detach();
      await reports.flush();
    },
  };
}
