import { hostname, release } from 'node:os';
import { join } from 'node:path';
import type { Policy } from '../shared/policy/schema';
import { settingsFor } from '../shared/policy/resolve';
import type { Command, Platform, TrayNotice, TrayReport, TrayToAgent } from '../shared/protocol';
import { PROTOCOL_VERSION } from '../shared/protocol/primitives';
import type { ErrorCode } from '../shared/errors';
import { type Logger, recentWarnings } from '../node-common/logging';
import type { AgentConfig } from './config';
import { IdentityFile } from './identity';
import { checkLastRun, markStopped } from './tamper-watch';
import { DEFAULT_LINK_TUNING, Link } from './link/link';
import type { EventDraft } from './core/events';
import { DEFAULT_OUTBOX_OPTIONS, EventTooLargeError, Outbox } from './outbox/outbox';
import { tooLargeStandIn } from './outbox/too-large';
import { PolicyKeeper } from './policy-keeper';
import { type AnswerResult, type NoticeSink, type TrayPeer, bothSinks } from './core/notices';
import { TrayServer } from './tray/tray-server';
import { ProblemReports, REPORT_RATE, describe as describeReporter } from './tray/problem-reports';
import type { UserTrays } from './tray/user-trays';
import type { AgreementKeeper } from './aup/agreement-keeper';
import type { SessionControl } from './sessions/session-control';
import type { SessionDirectory, SignedInUsers } from './sessions/session-directory';
import { IdleReports } from './sessions/idle-reports';
import type { LoginLimit } from './sessions/login-limit';
import type { HomeFolders } from './sessions/home-folders';
import type { ProcessSource } from './software/programs/process-source';
import type { ProcessKiller } from './software/programs/process-killer';
import type { SoftwareGuard } from './software/programs/software-guard';
import type { FileGuard } from './software/downloads/file-guard';
import type { SignedInUser, WatchedFolder } from './software/downloads/file-folders';
import type { InventoryKeeper } from './software/installed/inventory-keeper';
import type { InventorySource } from './software/installed/inventory-source';
import type { SoftwareOs } from './software/software-os';
import type { LogoffScheduler } from './sessions/logoff-scheduler';
import type { IdleHintSource } from './sessions/logind-idle-hint';
import type { GroupSource } from './sessions/roles';
import type { LockSource } from './sessions/session-watcher';
import type { UsbGuard } from './usb/usb-guard';
import type * as RosterModule from './core/roster';
import type { HotplugSignal, UsbPlatform } from './usb/usb-platform';
import type * as AgreementKeeperModule from './aup/agreement-keeper';
import type * as ConfirmedSignOutModule from './sessions/confirmed-sign-out';
import type * as LoginLimitModule from './sessions/login-limit';
import type * as LogoffSchedulerModule from './sessions/logoff-scheduler';
import type * as RemoteLogoffModule from './sessions/remote-logoff';
import type * as RolesModule from './sessions/roles';
import type * as SessionDirectoryModule from './sessions/session-directory';
import type * as SessionWatcherModule from './sessions/session-watcher';
import type * as TrayMissingModule from './sessions/tray-missing';
import type * as AuditOnlyModule from './software/audit-only';
import type * as FileFoldersModule from './software/downloads/file-folders';
import type * as FileGuardModule from './software/downloads/file-guard';
import type * as InventoryKeeperModule from './software/installed/inventory-keeper';
import type * as SoftwareGuardModule from './software/programs/software-guard';
import type * as UserTraysModule from './tray/user-trays';
import type * as UsbGuardModule from './usb/usb-guard';

/*
 * A capability the configuration leaves off is never loaded: its rules, the
 * schemas of its state files and its dependencies (chokidar) would only hold
 * memory in an agent that runs for months (issue 14: 2 MiB of the agent with
 * USB, sessions and software off, `ratioMinimal` in `npm run bench --
 * agent-idle`). Each is required where it is first built.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const sessionsCode = () => ({
  ...(require('./aup/agreement-keeper') as typeof AgreementKeeperModule),
  ...(require('./sessions/confirmed-sign-out') as typeof ConfirmedSignOutModule),
  ...(require('./sessions/login-limit') as typeof LoginLimitModule),
  ...(require('./sessions/logoff-scheduler') as typeof LogoffSchedulerModule),
  ...(require('./sessions/remote-logoff') as typeof RemoteLogoffModule),
  ...(require('./sessions/roles') as typeof RolesModule),
  ...(require('./sessions/session-directory') as typeof SessionDirectoryModule),
  ...(require('./sessions/session-watcher') as typeof SessionWatcherModule),
  ...(require('./sessions/tray-missing') as typeof TrayMissingModule),
});
const userTraysCode = () => require('./tray/user-trays') as typeof UserTraysModule;
const softwareCode = () => ({
  ...(require('./software/audit-only') as typeof AuditOnlyModule),
  ...(require('./software/downloads/file-folders') as typeof FileFoldersModule),
  ...(require('./software/downloads/file-guard') as typeof FileGuardModule),
  ...(require('./software/installed/inventory-keeper') as typeof InventoryKeeperModule),
  ...(require('./software/programs/software-guard') as typeof SoftwareGuardModule),
});
const usbCode = () => require('./usb/usb-guard') as typeof UsbGuardModule;
// The roster asks the sessions capability who is signed in: without it there is nobody, and nothing to load.
const rosterCode = () => require('./core/roster') as typeof RosterModule;
/* eslint-enable @typescript-eslint/no-require-imports */

/** A tray restarting (an update, a crash) reconnects within this; one still gone after it was stopped. */
const TRAY_GONE_GRACE_MS = 3_000;
/**
 * Stopping is bounded whatever the outbox holds (issue 12: a service manager
 * kills what does not stop). The rules and channels get this long together;
 * the link gets at most this long to deliver what is left, then its own
 * bounded close; every event not acknowledged stays in the outbox.
 */
const STOP_PARTS_MS = 1_500;
const STOP_DELIVERY_MS = 500;

export interface AgentDeps {
  /** The USB settings are the composition root's: it turns them into `usb`. */
  config: Omit<AgentConfig, 'usb' | 'tray' | 'sessions' | 'software'>;
  fallbackPolicy: Policy;
  logger: Logger;
  platform: Platform;
  version: string;
  /** Batch size, window, heartbeat and backoff; the defaults suit a school. */
  linkTuning?: Partial<typeof DEFAULT_LINK_TUNING>;
  /** This OS's USB adapter, chosen by the composition root; absent: no USB control. */
  usb?: { platform: UsbPlatform; control: 'enforce' | 'observe'; hotplug?: HotplugSignal };
  /** Where notices for the person at the computer go; by default the tray channel at `trayPath`. */
  notices?: NoticeSink;
  /** The tray channel's socket or pipe; absent with no `notices`: notices are only logged. */
  trayPath?: string;
  /** A tray socket for each signed-in user (Linux, macOS): its folder and who is signed in. */
  userTrays?: { dir: string; users: SignedInUsers };
  /**
   * Who is signed in, and how to sign someone out: this OS's adapters. Absent:
   * no sessions, login limit, agreement or logoff on this computer.
   */
  sessions?: { directory: SessionDirectory; control: SessionControl; groups?: GroupSource; locks?: LockSource; idleHints?: IdleHintSource };
  /**
   * Software control: this OS's process source (and killer, signer lookup),
   * and where users' homes are. Absent: no software control. `observe`
   * decides and reports as audit, stopping and quarantining nothing.
   */
  software?: {
    control: 'enforce' | 'observe';
    processes: ProcessSource;
    killer: ProcessKiller;
    /** This OS's software facts (cli/software-for.ts): whose process is a person's, which folders, how paths compare. */
    os: SoftwareOs;
    signerOf?: (path: string) => Promise<string | undefined>;
    homes?: HomeFolders;
    /** The folders the file watch covers; default: this OS's (`os.downloads`, file-folders.ts) for the users signed in. */
    folders?: () => WatchedFolder[];
    /** Where the installed programs are listed (dpkg/rpm, the uninstall keys, app bundles); absent: no inventory. */
    inventory?: InventorySource;
  };
  /** Called once the collector has enrolled this device and its identity is saved (the composition root forgets the token). */
  onEnrolled?: (deviceId: string) => void;
  /** How often sessions are read and the login limit and logoff rules looked at (default 5 s). */
  sessionPollMs?: number;
}

export interface RunningAgent {
  readonly outbox: Outbox;
  readonly link: Link;
  readonly policy: PolicyKeeper;
  readonly usb: UsbGuard | undefined;
  /** The acceptable-use agreements answered on this computer; absent without a session adapter. */
  readonly agreements: AgreementKeeper | undefined;
  /** The idle time each user's tray last reported. */
  readonly idle: IdleReports;
  /** Records an event: durably in the outbox first, then the link sends it. */
  record(draft: EventDraft): Promise<void>;
  stop(reason: string): Promise<void>;
}

/**
 * The agent service: the outbox, the link to the collector and the policy in
 * force. Rules and OS adapters plug in here as they are built; each reports
 * through `record`, so every event is on disk before anything else happens.
 */
export async function startAgent(deps: AgentDeps): Promise<RunningAgent> {
  const { config, logger } = deps;
  const log = logger.child({ component: 'agent' });
  const { outbox, report } = await Outbox.open({ ...DEFAULT_OUTBOX_OPTIONS, dir: join(config.dataDir, 'outbox'), capBytes: config.outbox.capBytes });
  const policy = await PolicyKeeper.open(config.dataDir, deps.fallbackPolicy);
  const now = () => new Date().toISOString();

  // The link is built after the recovery reports are recorded; until then `record` only writes to disk.
  const links: Link[] = [];
  const guards: UsbGuard[] = [];
  const limits: LoginLimit[] = [];
  const logoffs: LogoffScheduler[] = [];
  const softwareGuards: SoftwareGuard[] = [];
  const fileGuards: FileGuard[] = [];
  const inventories: InventoryKeeper[] = [];
  /** The signed-in users' homes, kept up to date by the session watch, for the folders the file watch covers. */
  let homes: SignedInUser[] = [];
  // Sign-outs for the login limit, the agreement, a missing tray and the network manager count once the session has gone;
  // the logoff scheduler confirms its own.
  const confirmedSignOut = deps.sessions && new (sessionsCode().ConfirmedSignOut)(deps.sessions.control, deps.sessions.directory);
  // The rules that look at sessions every tick share one read of them; the sign-out confirmation above reads afresh.
  const sharedSessions = deps.sessions && new (sessionsCode().SharedSessionRead)(deps.sessions.directory);
  /**
   * Who is signed in with which role, and who is at the screen: what the
   * login limit, logoff, software and USB rules all ask (agent/core/roster.ts).
   * Without a session adapter there is nobody, and the default role applies.
   */
  const roster =
    deps.sessions &&
    new (rosterCode().Roster)({
      directory: sharedSessions ?? deps.sessions.directory,
      policy: () => policy.current,
      ...(deps.sessions.groups ? { groups: deps.sessions.groups } : {}),
      // A stick let in for a teacher is decided again when a pupil takes the screen (and the other way round).
      onScreenChanged: () =>
        void guards[0]
          ?.reconsiderAll()
          .catch((e: unknown) => log.error('deciding USB devices again for the person at the screen failed', { error: String(e) })),
    });
  const trays: TrayServer[] = [];
  const timers: NodeJS.Timeout[] = [];
  const closers: Array<() => Promise<void>> = [];
  const seenCommands = new Set<string>();
  /** Set by the first stop(): a second signal, or a test's cleanup, waits for the same stop. */
  let stopping: Promise<void> | undefined;
  let lastEvent: { type: string; time: string } | null = null;
  let statusTimer: NodeJS.Timeout | undefined;
  const record = async (draft: EventDraft): Promise<void> => {
    await outbox.append(draft).catch((e: unknown) => {
      if (!(e instanceof EventTooLargeError)) throw e;
      // The rule that recorded it carries on; the collector learns what happened, without the details.
      log.warn('an event is larger than the outbox keeps; recorded a stand-in without its details', {
        type: e.eventType,
        severity: draft.severity,
        bytes: e.bytes,
        maxBytes: e.maxBytes,
      });
      return outbox.append(tooLargeStandIn(draft, e.bytes, e.maxBytes));
    });
    for (const l of links) l.notify();
    lastEvent = { type: draft.type, time: draft.time };
    // A burst of events updates the tray once, a second later.
    statusTimer ??= setTimeout(() => {
      statusTimer = undefined;
      publishStatus();
    }, 1000).unref();
  };
  let notices: NoticeSink | undefined = deps.notices;
  /** What the tray icon and status window show: connected or not, which policy, the last event. */
  const publishStatus = (): void => {
    const link = links[0];
    const current = policy.current;
    const policyUrl = Object.values(current.clauses).find((c) => c.url)?.url;
    notices?.status?.({
      v: PROTOCOL_VERSION,
      type: 'tray.status',
      state: link?.currentState === 'ready' ? 'protected' : 'disconnected',
      policyName: current.name,
      policyRevision: current.revision,
      connectedSince: link?.connectedSince?.toISOString() ?? null,
      lastEvent,
      ...(policyUrl ? { policyUrl } : {}),
    });
  };

  for (const c of report.corrupt) {
    log.error('outbox record corrupt; skipped', c);
    await record({ type: 'outbox.corrupt', severity: 'warning', time: now(), data: { segment: c.segment, offset: c.offset, bytesSkipped: c.bytesSkipped } });
  }
  if (report.tornBytes > 0) log.warn('outbox had a torn tail from an interrupted write; truncated', { bytes: report.tornBytes });
  outbox.onOverflow = (dropped) => {
    log.warn('outbox full: dropped the least important events', { dropped });
    record({ type: 'outbox.overflow', severity: 'warning', time: now(), data: { capBytes: config.outbox.capBytes, dropped } }).catch((e: unknown) =>
      log.error('could not record an overflow', { error: String(e) }),
    );
  };

  const link = new Link({
    ...DEFAULT_LINK_TUNING,
    ...deps.linkTuning,
    url: config.collector.url,
    allowInsecure: config.collector.allowInsecure,
    ...(config.collector.caFile ? { caFile: config.collector.caFile } : {}),
    ...(config.collector.enrollmentToken ? { enrollmentToken: config.collector.enrollmentToken } : {}),
    identity: new IdentityFile(config.dataDir),
    ...(deps.onEnrolled ? { onEnrolled: deps.onEnrolled } : {}),
    outbox,
    logger,
    agentVersion: deps.version,
    hostname: hostname(),
    platform: deps.platform,
    policyRevision: () => policy.current.revision,
    policyId: () => policy.current.id,
    onPolicy: (pushed) => {
      policy
        .replace(pushed)
        .then((result) =>
          result.ok
            ? record({ type: 'policy.applied', severity: 'notice', time: now(), data: { policyId: pushed.id, version: pushed.revision } }).then(() =>
                Promise.all([guards[0]?.reconsiderAll(), agreements?.onPolicyChanged(), softwareGuards[0]?.reconsiderAll()]).then(() => undefined),
              )
            : record({
                type: 'policy.rejected',
                severity: 'warning',
                time: now(),
                data: { policyId: pushed.id, problems: result.problems.slice(0, 100).map((p) => ({ code: p.code, path: p.path.slice(0, 256) })) },
              }),
        )
        .catch((e: unknown) => log.error('could not apply a pushed policy', { error: String(e) }));
    },
    onCommand: (commandId: string, command: Command) => {
      // Delivery is at least once: a command seen before is not carried out twice.
      if (seenCommands.has(commandId)) return;
      seenCommands.add(commandId);
      if (seenCommands.size > 1000) seenCommands.delete(seenCommands.values().next().value!);
      log.info('command received', { commandId, kind: command.kind });
      carryOut(command).then(
        (error) => {
          link.sendCommandResult(commandId, error === undefined, error);
          return record({
            type: 'command.completed',
            severity: 'notice',
            time: now(),
            data: { commandId, ok: error === undefined, ...(error ? { code: error.code } : {}) },
          });
        },
        (e: unknown) => log.error('command failed', { commandId, error: String(e) }),
      );
    },
    onPermissionDecision: (decision) => {
      guards[0]?.onDecision(decision).catch((e: unknown) => log.error('could not handle a permission decision', { error: String(e) }));
    },
    onLoginVerdict: (verdict) => {
      limits[0]?.onVerdict(verdict).catch((e: unknown) => log.error('could not act on a login verdict', { error: String(e) }));
    },
    onReady: () => {
      guards[0]?.resendPendingRequests();
      limits[0]?.onLinkReady();
      publishStatus();
    },
    onDown: () => publishStatus(),
  });

  /** Carries out one command; resolves to the coded error when it could not. */
  async function carryOut(command: Command): Promise<{ code: ErrorCode; message: string } | undefined> {
    const usb = guards[0];
    switch (command.kind) {
      case 'usb-allow':
        if (!usb) break;
        await usb.addAllowlistEntry(command.entry);
        return undefined;
      case 'usb-revoke':
        if (!usb) break;
        return (await usb.removeAllowlistEntry(command.entryId))
          ? undefined
          : { code: 'INV_ERR_API_NOT_FOUND', message: `no allowlist entry ${command.entryId} on this device` };
      case 'logoff':
        if (!deps.sessions) break;
        return sessionsCode().carryOutLogoff(command, { directory: deps.sessions.directory, control: confirmedSignOut ?? deps.sessions.control, record });
      case 'restore-file': {
        const files = fileGuards[0];
        if (!files) break;
        const restored = await files.restore(command.quarantineId);
        return restored.ok ? undefined : { code: restored.code, message: restored.message };
      }
      case 'refresh-inventory': {
        const inventory = inventories[0];
        if (!inventory) break;
        const refreshed = await inventory.refresh();
        return refreshed.ok ? undefined : { code: refreshed.code, message: refreshed.message };
      }
    }
    // Inventory and restore arrive with their issues, and a computer without a session adapter cannot log off: say so.
    return { code: 'INV_ERR_NOT_SUPPORTED', message: `this agent cannot carry out ${command.kind} yet` };
  }

  links.push(link);
  await record({
    type: 'agent.started',
    severity: 'info',
    time: now(),
    data: { agentVersion: deps.version, platform: deps.platform, hostname: hostname().slice(0, 256) },
  });
  // The last run did not stop cleanly: killed, or crashed.
  if (await checkLastRun(config.dataDir, record)) log.warn('the last run of the agent did not stop cleanly; reported as agent.tamper');
  const idle = new IdleReports();
  const personal: UserTrays[] = [];
  const agreements = deps.sessions
    ? new (sessionsCode().AgreementKeeper)({
        dataDir: config.dataDir,
        policy: () => policy.current,
        notices: {
          showTo: (uid, n) => personal[0]?.showTo(uid, n),
          withdraw: (id) => personal[0]?.withdraw(id),
        },
        record,
        sessions: sharedSessions ?? deps.sessions.directory,
        control: confirmedSignOut ?? deps.sessions.control,
        logger,
      })
    : undefined;
  await agreements?.load();
  /** An answer from a tray goes to the rule whose notice it answers. */
  const answer = async (a: Extract<TrayToAgent, { type: 'tray.answer' }>, from: TrayPeer): Promise<AnswerResult> => {
    if (agreements?.isMine(a.noticeId)) return agreements.answer(a, from);
    if (limits[0]?.isMine(a.noticeId)) return limits[0].answer(a, from);
    if (logoffs[0]?.isMine(a.noticeId)) return logoffs[0].answer(a.noticeId, a.action, from);
    return (
      guards[0]?.answer(a.noticeId, a.action, a.text, a.target, from) ?? {
        ok: false as const,
        code: 'INV_ERR_NOT_SUPPORTED' as const,
        message: 'no rule here answers notices',
      }
    );
  };
  const recent = recentWarnings(logger);
  closers.push(async () => recent.detach());
  /**
   * A problem reported from the tray: recorded with what IT support needs to
   * start (this computer, the agent's state, its last warnings), under a rate
   * per user, and for a suspected virus the on-screen warning Basildon 3.7 asks
   * for, when the policy says so (agent/tray/problem-reports.ts).
   */
  const problemReports = new ProblemReports({
    record,
    policy: () => policy.current,
    notices: () => notices,
    logger,
    systemDetails: (from) => {
      const who = describeReporter(from);
      return [
        `computer: ${hostname()} (${deps.platform} ${release()})`,
        `agent: ${deps.version}; link: ${links[0]?.currentState ?? 'none'}; unsent events: ${outbox.pendingCount}`,
        `policy: ${policy.current.id} revision ${policy.current.revision}`,
        ...(who ? [`reported from ${who}`] : []),
        'recent warnings and errors:',
        ...recent.lines(),
      ].join('\n');
    },
  });
  const takeProblemReport = (r: TrayReport, from: TrayPeer) => problemReports.take(r, from);
  // What was held back is recorded every few minutes, and at stop. Unref'd: this
  // timer runs on every agent, and must not keep alive one whose link and outbox are closed.
  timers.push(setInterval(() => void problemReports.flush().catch(() => undefined), REPORT_RATE.heldBackMinutes * 60_000).unref());
  closers.push(() => problemReports.flush());
  if (!notices && deps.trayPath) {
    const tray = new TrayServer({ path: deps.trayPath, logger, onAnswer: answer, onReport: takeProblemReport });
    try {
      await tray.listen();
      trays.push(tray);
      notices = tray;
    } catch (e) {
      // Enforcement must not depend on the channel that explains it (a path too long for a socket, say).
      log.error('the tray channel could not be opened; notices are only logged', { path: deps.trayPath, error: String(e) });
    }
  }
  if (deps.userTrays) {
    const directory = sharedSessions;
    const { UserTrays } = userTraysCode();
    const { handleTrayMissing } = sessionsCode();
    const userTrays = new UserTrays({
      ...deps.userTrays,
      logger,
      onAnswer: answer,
      onReport: takeProblemReport,
      onIdle: (seconds, from) => idle.report(from, seconds),
      onGone: (from) => {
        // A tray closes at logout; one that goes while its user is still signed in was killed (or crashed).
        const uid = from.uid;
        if (uid === undefined) return;
        setTimeout(() => {
          void (async () => {
            if (userTrays.traysOf(uid) > 0) return;
            const still = (await directory?.sessions().catch(() => []))?.some(
              (s) => s.uid === uid && (from.sessionId === undefined || s.sessionId === from.sessionId),
            );
            if (!still) return;
            log.warn('a tray went away while its user is still signed in', { uid });
            await record({ type: 'agent.tamper', severity: 'warning', time: now(), data: { target: 'tray', action: 'killed' } });
          })().catch(() => undefined);
        }, TRAY_GONE_GRACE_MS).unref();
      },
      onHello: (from) => void agreements?.onHello(from).catch((e: unknown) => log.error('could not put the agreement to a user', { error: String(e) })),
      ...(directory
        ? { verifySession: async (uid: number, sessionId: string) => (await directory.sessions()).some((s) => s.uid === uid && s.sessionId === sessionId) }
        : {}),
      graceSeconds: () => settingsFor(policy.current, 'logoff', policy.current.roles.default).trayGraceSeconds,
      onMissing: (uid, sinceSeconds) => {
        log.warn('a signed-in user has no tray', { uid, sinceSeconds });
        const control = confirmedSignOut;
        handleTrayMissing(
          { policy: () => policy.current, record, logger, ...(directory ? { directory } : {}), ...(control ? { control } : {}) },
          uid,
          sinceSeconds,
        ).catch((e: unknown) => log.error('could not handle a missing tray', { error: String(e) }));
      },
    });
    personal.push(userTrays);
    const sync = () => userTrays.sync().catch((e: unknown) => log.error('could not open the users’ tray sockets', { error: String(e) }));
    await sync();
    // Someone signs in or out: their socket comes or goes within a few seconds.
    timers.push(setInterval(() => void sync(), 5_000));
    closers.push(() => userTrays.close());
    notices = notices ? bothSinks(notices, userTrays) : userTrays;
  }
  if (deps.sessions) {
    const { LoginLimit, LogoffScheduler, SessionWatcher } = sessionsCode();
    const { control } = deps.sessions;
    const directory = sharedSessions ?? deps.sessions.directory;
    const confirmed = confirmedSignOut ?? control;
    const signedIn = roster!;
    const personalNotices = {
      showTo: (uid: number, n: TrayNotice) => personal[0]?.showTo(uid, n),
      withdraw: (id: string) => personal[0]?.withdraw(id),
    };
    const limit = new LoginLimit({
      policy: () => policy.current,
      link: {
        sendLogin: (m) => link.sendLogin(m as Parameters<Link['sendLogin']>[0]),
        get ready() {
          return link.currentState === 'ready';
        },
      },
      notices: personalNotices,
      record,
      control: confirmed,
      logger,
    });
    limits.push(limit);
    const watcher = new SessionWatcher({
      directory,
      dataDir: config.dataDir,
      record,
      roleOf: (s) => signedIn.roleOf(s),
      ...(deps.sessions.locks ? { locks: deps.sessions.locks } : {}),
      onStarted: (s, role) => limit.sessionStarted(s, role || policy.current.roles.default),
      onEnded: (id) => limit.sessionEnded(id),
      logger,
    });
    const logoff = new LogoffScheduler({
      policy: () => policy.current,
      sessions: directory,
      idle,
      ...(deps.sessions.idleHints ? { idleHints: deps.sessions.idleHints } : {}),
      control,
      notices: personalNotices,
      record,
      logger,
      // The groups were looked up once, at sign-in: asking the OS on every tick would cost a process each time.
      roleOf: (s) => signedIn.roleOf(s),
    });
    logoffs.push(logoff);
    let busy = false;
    const watch = async () => {
      // A slow OS command must not let polls pile up.
      if (busy) return;
      busy = true;
      try {
        await signedIn.refresh();
        await watcher.poll();
        await limit.tick();
        await logoff.tick();
        if (deps.software?.homes) {
          const found = await Promise.all(
            signedIn
              .signedIn()
              .filter((x) => !x.remote)
              .map((x) => deps.software!.homes!.of(x)),
          );
          homes = [...new Map(found.filter((h): h is SignedInUser => h !== undefined).map((h) => [h.uid, h])).values()];
        }
      } catch (e) {
        log.error('watching sessions failed', { error: String(e) });
      } finally {
        busy = false;
      }
    };
    await watch();
    timers.push(setInterval(() => void watch(), deps.sessionPollMs ?? 5_000));
  }
  if (deps.software) {
    const { FileGuard, InventoryKeeper, SoftwareGuard, auditOnly, watchedFolders } = softwareCode();
    const sw = deps.software;
    // A developer's own machine (`invigilator start`): every decision is made and reported as audit, nothing is
    // stopped or quarantined. The process guard has its own observe mode; the file guard is given an audit policy.
    const filePolicy = () => (sw.control === 'observe' ? auditOnly(policy.current) : policy.current);
    const roleOfUid = async (uid: number) => roster?.roleOfUid(uid) ?? policy.current.roles.default;
    const personalNotices = {
      showTo: (uid: number, n: TrayNotice) => personal[0]?.showTo(uid, n),
      withdraw: (id: string) => personal[0]?.withdraw(id),
    };
    const processes = new SoftwareGuard({
      policy: () => policy.current,
      source: sw.processes,
      record,
      notices: personalNotices,
      roleOf: roleOfUid,
      logger,
      selfPids: () => [process.pid],
      control: sw.control,
      os: sw.os.programs,
      killer: sw.killer,
      ...(sw.signerOf ? { signerOf: sw.signerOf } : {}),
    });
    const files = new FileGuard({
      policy: filePolicy,
      roleOf: roleOfUid,
      record,
      notices: personalNotices,
      dataDir: config.dataDir,
      folders: sw.folders ?? (() => watchedFolders({ os: sw.os.downloads, users: homes, env: process.env })),
      logger,
      os: sw.os.downloads,
      userName: (uid) => roster?.byUid(uid)?.user,
    });
    softwareGuards.push(processes);
    fileGuards.push(files);
    // Enforcement must not wait on, or fail with, the other rules.
    await processes.start().catch((e: unknown) => log.error('the process watch did not start', { error: String(e) }));
    await files.start().catch((e: unknown) => log.error('the file watch did not start', { error: String(e) }));
    closers.push(
      () => processes.stop(),
      () => files.stop(),
    );
    if (sw.inventory) {
      const inventory = new InventoryKeeper({ source: sw.inventory, dataDir: config.dataDir, record, logger });
      inventories.push(inventory);
      // The first look lists every program; it runs in the background so that the agent's start does not wait on dpkg.
      void inventory.start();
      closers.push(() => inventory.stop());
    }
  }
  if (deps.usb) {
    const { UsbGuard } = usbCode();
    const identity = new IdentityFile(config.dataDir);
    const usb = new UsbGuard({
      platform: deps.usb.platform,
      control: deps.usb.control,
      ...(deps.usb.hotplug ? { hotplug: deps.usb.hotplug } : {}),
      policy: () => policy.current,
      // The person at the screen decides; who asked is named from their own tray (agent/core/roster.ts).
      currentUser: () => roster?.userAtScreen(),
      ...(roster ? { userOf: (uid: number) => roster.userOf(uid) } : {}),
      record,
      notices: notices ?? { show: (n) => log.info('notice', { kind: n.kind, title: n.title }), withdraw: () => undefined },
      sendPermissionRequest: (request) => link.sendPermissionRequest(request),
      deviceIdentity: async () => {
        const found = await identity.load();
        return found && { deviceId: found.deviceId, secret: Buffer.from(found.deviceSecret, 'base64url') };
      },
      dataDir: config.dataDir,
      logger,
    });
    guards.push(usb);
    await usb.start();
    // Allowlist entries expire on the minute; a stick let in until 16:00 stops then, plugged in or not.
    timers.push(setInterval(() => void usb.checkExpiries().catch((e: unknown) => log.error('checking USB exceptions failed', { error: String(e) })), 60_000));
  }
  // Only now: a usb-allow or a decision arriving before the guard had loaded its state would have been lost.
  publishStatus();
  link.start();
  log.info('agent started', { dataDir: config.dataDir, collector: config.collector.url, policy: policy.current.id, pending: outbox.pendingCount });

  return {
    outbox,
    link,
    policy,
    usb: guards[0],
    agreements,
    idle,
    record,
    stop: (reason: string) => (stopping ??= stopAll(reason)),
  };

  async function stopAll(reason: string): Promise<void> {
    for (const t of timers) clearInterval(t);
    clearTimeout(statusTimer);
    const parts = (async () => {
      await guards[0]?.stop().catch((e: unknown) => log.error('USB control did not stop cleanly', { error: String(e) }));
      await trays[0]?.close();
      for (const close of closers) await close().catch(() => undefined);
    })();
    if (!(await settlesWithin(parts, STOP_PARTS_MS))) log.warn('some parts of the agent did not stop in time; stopping anyway', { waitedMs: STOP_PARTS_MS });
    await settlesWithin(
      record({ type: 'agent.stopped', severity: 'info', time: now(), data: { reason } }).catch(() => undefined),
      STOP_PARTS_MS,
    );
    await markStopped(config.dataDir).catch(() => undefined);
    // Give the link a moment to deliver the last events; whatever is left stays in the outbox for next time.
    await waitFor(() => outbox.pendingCount === 0 || link.currentState !== 'ready', STOP_DELIVERY_MS);
    await link.stop();
    await outbox.close();
    log.info('agent stopped', { reason, pending: outbox.pendingCount });
  }
}

async function waitFor(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** Whether `work` settled within `ms`; it goes on either way, but the caller no longer waits for it. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
