import type { AgentContext, Capability } from '../core/capability';
import type { Roster } from '../core/roster';
import type { GroupSource, SessionDirectory } from '../core/sessions';
import { ConfirmedSignOut } from './confirmed-sign-out';
import type { IdleReports } from './idle-reports';
import { LOGIN_LIMIT_NOTICE_PREFIX, LoginLimit } from './login-limit';
import type { IdleHintSource } from './logind-idle-hint';
import { LOGOFF_NOTICE_PREFIX } from './logoff-notices';
import { LogoffScheduler } from './logoff-scheduler';
import { carryOutLogoff } from './remote-logoff';
import type { SessionControl } from './session-control';
import { SharedSessionRead } from './session-directory';
import { type LockSource, SessionWatcher } from './session-watcher';
import { handleTrayMissing } from './tray-missing';

/** Who is signed in, and how to sign someone out: this OS's adapters, chosen by the composition root. */
export interface SessionAdapters {
  directory: SessionDirectory;
  control: SessionControl;
  groups?: GroupSource;
  locks?: LockSource;
  idleHints?: IdleHintSource;
}

/** What several capabilities read the sessions through. */
export interface SessionReads {
  /** One read of the sessions per tick, shared by the rules that look every tick. */
  read: SessionDirectory;
  /** A sign-out that counts once the session has gone (it reads afresh, not through the shared read). */
  confirmed: SessionControl;
}

export function sessionReads(adapters: SessionAdapters): SessionReads {
  return { read: new SharedSessionRead(adapters.directory), confirmed: new ConfirmedSignOut(adapters.control, adapters.directory) };
}

export interface SessionsDeps {
  adapters: SessionAdapters;
  reads: SessionReads;
  roster: Roster;
  /** The idle time each user's tray last reported, for the logoff rule. */
  idle: IdleReports;
  /** How often sessions are read and the login limit and logoff rules looked at (default 5 s). */
  pollMs?: number;
}

/**
 * Sessions as a capability: each tick reads who is signed in (the roster),
 * records sessions starting and ending, holds the login limit and the logoff
 * rules, and carries out `logoff` commands. A missing tray is handled here,
 * as signing out is.
 */
export function sessionsCapability(ctx: AgentContext, deps: SessionsDeps): Capability {
  const log = ctx.logger.child({ component: 'agent' });
  const { adapters, reads, roster } = deps;
  const limit = new LoginLimit({
    policy: ctx.policy,
    link: {
      sendLogin: (m) => ctx.collector.sendLogin(m as Parameters<AgentContext['collector']['sendLogin']>[0]),
      get ready() {
        return ctx.collector.ready;
      },
    },
    notices: ctx.notices,
    record: ctx.record,
    control: reads.confirmed,
    logger: ctx.logger,
  });
  const watcher = new SessionWatcher({
    directory: reads.read,
    dataDir: ctx.dataDir,
    record: ctx.record,
    roleOf: (s) => roster.roleOf(s),
    ...(adapters.locks ? { locks: adapters.locks } : {}),
    onStarted: (s, role) => limit.sessionStarted(s, role || ctx.policy().roles.default),
    onEnded: (id) => limit.sessionEnded(id),
    logger: ctx.logger,
  });
  // The logoff scheduler confirms its own sign-outs.
  const logoff = new LogoffScheduler({
    policy: ctx.policy,
    sessions: reads.read,
    idle: deps.idle,
    ...(adapters.idleHints ? { idleHints: adapters.idleHints } : {}),
    control: adapters.control,
    notices: ctx.notices,
    record: ctx.record,
    logger: ctx.logger,
    // The groups were looked up once, at sign-in: asking the OS on every tick would cost a process each time.
    roleOf: (s) => roster.roleOf(s),
  });
  let busy = false;
  const watch = async () => {
    // A slow OS command must not let polls pile up.
    if (busy) return;
    busy = true;
    try {
      await roster.refresh();
      await watcher.poll();
      await limit.tick();
      await logoff.tick();
      await ctx.peers.sessionsRead();
    } catch (e) {
      log.error('watching sessions failed', { error: String(e) });
    } finally {
      busy = false;
    }
  };
  return {
    name: 'sessions',
    commands: {
      logoff: (command) => carryOutLogoff(command, { directory: adapters.directory, control: reads.confirmed, record: ctx.record }),
    },
    notices: {
      prefixes: [LOGIN_LIMIT_NOTICE_PREFIX, LOGOFF_NOTICE_PREFIX],
      answer: (a, from) => (logoff.isMine(a.noticeId) ? logoff.answer(a.noticeId, a.action, from) : limit.answer(a, from)),
    },
    collector: { 'login.verdict': (verdict) => limit.onVerdict(verdict) },
    onLinkReady: () => limit.onLinkReady(),
    onTrayMissing: (uid, sinceSeconds) =>
      handleTrayMissing({ policy: ctx.policy, record: ctx.record, logger: ctx.logger, directory: reads.read, control: reads.confirmed }, uid, sinceSeconds),
    start: async () => {
      await watch();
      ctx.every(deps.pollMs ?? 5_000, () => void watch());
    },
  };
}
