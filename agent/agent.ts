import { hostname } from 'node:os';
import { join } from 'node:path';
import type { AgentDeps, RunningAgent } from './agent-deps';
import * as load from './capabilities';
import type { AgentContext, Capability } from './core/capability';
import { CapabilitySet } from './core/capability-set';
import { NoticeHub } from './core/notice-hub';
import { StatusBoard } from './core/status-board';
import type { Link } from './link/link';
import { collectorLink, collectorPort } from './link/collector-link';
import { DEFAULT_OUTBOX_OPTIONS, Outbox } from './outbox/outbox';
import { outboxRecorder, reportOutboxHealth } from './outbox/recording';
import { PolicyKeeper } from './policy-keeper';
import { IdleReports } from './sessions/idle-reports';
import { stopInTime } from './stopping';
import { checkLastRun } from './tamper-watch';
import { openProblemDesk } from './tray/problem-desk';
import { openRootTray } from './tray/root-tray';

export type { AgentDeps, RunningAgent } from './agent-deps';

/**
 * The agent service, composed: the core (outbox, policy, link, notices, the tray channel, the roster) and the
 * capabilities the composition root gave adapters for. Each capability registers what it answers
 * (agent/core/capability.ts) and is looked up by the core; this file builds and wires, and knows none of them.
 */
export async function startAgent(deps: AgentDeps): Promise<RunningAgent> {
  const { config, logger } = deps;
  const log = logger.child({ component: 'agent' });
  const { outbox, report } = await Outbox.open({ ...DEFAULT_OUTBOX_OPTIONS, dir: join(config.dataDir, 'outbox'), capBytes: config.outbox.capBytes });
  const policy = await PolicyKeeper.open(config.dataDir, deps.fallbackPolicy);
  const current = () => policy.current;
  const caps = new CapabilitySet(logger);
  const notices = new NoticeHub(logger, deps.notices);
  const timers: NodeJS.Timeout[] = [];
  // Until the link is built (after the outbox's own reports), `record` only writes to disk.
  let link: Link | undefined;
  const linkState = () => ({ ready: link?.currentState === 'ready', connectedSince: link?.connectedSince });
  const status = new StatusBoard({ policy: current, notices, attention: () => caps.attention(), link: linkState });
  const record = outboxRecorder(outbox, logger, (draft) => (link?.notify(), status.recorded(draft)));
  const sessions = deps.sessions && load.sessions().sessionReads(deps.sessions);
  // Who is signed in with which role: what the login limit, logoff, software and USB rules all ask.
  const roster =
    sessions &&
    new (load.roster().Roster)({
      directory: sessions.read,
      policy: current,
      ...(deps.sessions?.groups ? { groups: deps.sessions.groups } : {}),
      onScreenChanged: () => caps.screenChanged(),
    });
  await reportOutboxHealth(outbox, report, config.outbox.capBytes, record, logger);
  const collector: Link = (link = collectorLink({ ...deps, outbox, policy, record, capabilities: caps, changed: () => status.publish() }));
  const now = () => new Date().toISOString();
  const data = { agentVersion: deps.version, platform: deps.platform, hostname: hostname().slice(0, 256) };
  await record({ type: 'agent.started', severity: 'info', time: now(), data });
  // The last run did not stop cleanly: killed, or crashed.
  if (await checkLastRun(config.dataDir, record)) log.warn('the last run of the agent did not stop cleanly; reported as agent.tamper');
  const idle = new IdleReports();
  const agentState = () => ({ link: collector.currentState, unsent: outbox.pendingCount });
  const problems = openProblemDesk({ ...deps, record, policy: current, notices: () => notices.sink(), agentState });

  const every = (ms: number, tick: () => void) => void timers.push(setInterval(tick, ms));
  const ctx: AgentContext = {
    dataDir: config.dataDir,
    logger,
    policy: current,
    record,
    notices,
    roster,
    peers: caps,
    collector: collectorPort(collector),
    every,
  };
  // Each capability is loaded only when the root gave it adapters (agent/capabilities.ts); listed in the order they start.
  const aup = sessions && load.aup().aupCapability(ctx, { sessions: sessions.read, control: sessions.confirmed });
  const usb = deps.usb && load.usb().usbCapability(ctx, deps.usb);
  const attach = notices.attachPersonal.bind(notices);
  const trays = deps.userTrays && { ...deps.userTrays, sessions: sessions?.read, onReport: problems.take, attach, idle };
  const poll = deps.sessionPollMs ? { pollMs: deps.sessionPollMs } : {};
  const list: Array<Capability | undefined> = [
    // The agreements given are loaded before any user's tray can say hello.
    aup,
    trays && load.tray().trayCapability(ctx, trays),
    sessions && roster && load.sessions().sessionsCapability(ctx, { adapters: deps.sessions!, reads: sessions, roster, idle, ...poll }),
    deps.software && load.software().softwareCapability(ctx, deps.software),
    usb,
  ];
  for (const c of list) if (c) caps.add(c);

  const onAnswer = caps.answer.bind(caps);
  const root = !deps.notices && deps.trayPath ? await openRootTray({ path: deps.trayPath, logger, onAnswer, onReport: problems.take }) : undefined;
  if (root) notices.attach(root);
  await caps.start();
  // Only now: a command or a decision arriving before a capability had loaded its state would have been lost.
  status.publish();
  collector.start();
  const started = { dataDir: config.dataDir, collector: config.collector.url, policy: policy.current.id, pending: outbox.pendingCount };
  log.info('agent started', { ...started, capabilities: caps.names });

  let stopping: Promise<void> | undefined;
  const stop = (reason: string): Promise<void> => {
    for (const t of timers) clearInterval(t);
    status.stop();
    const parts = (async () => {
      await caps.stop();
      await root?.close();
      await problems.close().catch(() => undefined);
    })();
    return stopInTime({ reason, parts, record, dataDir: config.dataDir, outbox, link: collector, logger });
  };
  return { outbox, link: collector, policy, usb: usb?.guard, agreements: aup?.keeper, idle, record, stop: (reason) => (stopping ??= stop(reason)) };
}
