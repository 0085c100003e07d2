import { settingsFor } from '../../shared/policy/resolve';
import type { AgentContext, Capability } from '../core/capability';
import type { Notices } from '../core/notices';
import type { SessionDirectory } from '../core/sessions';
import type { IdleReports } from '../sessions/idle-reports';
import type { SignedInUsers } from '../sessions/session-directory';
import type { TrayServerOptions } from './tray-server';
import { UserTrays } from './user-trays';

/** A tray restarting (an update, a crash) reconnects within this; one still gone after it was stopped. */
const TRAY_GONE_GRACE_MS = 3_000;
/** Someone signs in or out: their socket comes or goes within this. */
const SYNC_MS = 5_000;

export interface UserTrayDeps {
  /** The sockets' folder, and who is signed in (whose sockets to open). */
  dir: string;
  users: SignedInUsers;
  /** The tick's shared read of the sessions: whether a tray's user and session are still there. */
  sessions: SessionDirectory | undefined;
  /** The notice hub: the users' trays are where notices for one person go. */
  attach: (trays: Notices) => void;
  onReport: NonNullable<TrayServerOptions['onReport']>;
  /** Where the idle time each tray reports is kept, for the logoff rule. */
  idle: Pick<IdleReports, 'report'>;
}

/**
 * A tray socket for each signed-in user (Linux), which only that user can
 * open, as a capability: it carries notices to one person, passes their
 * answers, reports and idle time on, and notices a tray killed while its user
 * is still signed in (`agent.tamper`) or missing for the policy's grace period.
 */
export function trayCapability(ctx: AgentContext, deps: UserTrayDeps): Capability {
  const log = ctx.logger.child({ component: 'agent' });
  const { sessions } = deps;
  const signedIn = async (uid: number, sessionId: string | undefined) =>
    (await sessions?.sessions().catch(() => []))?.some((s) => s.uid === uid && (sessionId === undefined || s.sessionId === sessionId)) ?? false;
  const trays: UserTrays = new UserTrays({
    dir: deps.dir,
    users: deps.users,
    logger: ctx.logger,
    onAnswer: (a, from) => ctx.peers.answer(a, from),
    onReport: deps.onReport,
    onIdle: (seconds, from) => deps.idle.report(from, seconds),
    onGone: (from) => {
      // A tray closes at logout; one that goes while its user is still signed in was killed (or crashed).
      const uid = from.uid;
      if (uid === undefined) return;
      setTimeout(() => {
        void (async () => {
          if (trays.traysOf(uid) > 0 || !(await signedIn(uid, from.sessionId))) return;
          log.warn('a tray went away while its user is still signed in', { uid });
          await ctx.record({ type: 'agent.tamper', severity: 'warning', time: new Date().toISOString(), data: { target: 'tray', action: 'killed' } });
        })().catch(() => undefined);
      }, TRAY_GONE_GRACE_MS).unref();
    },
    onHello: (from) => ctx.peers.trayHello(from),
    ...(sessions
      ? { verifySession: async (uid: number, sessionId: string) => (await sessions.sessions()).some((s) => s.uid === uid && s.sessionId === sessionId) }
      : {}),
    graceSeconds: () => settingsFor(ctx.policy(), 'logoff', ctx.policy().roles.default).trayGraceSeconds,
    onMissing: (uid, sinceSeconds) => {
      log.warn('a signed-in user has no tray', { uid, sinceSeconds });
      ctx.peers.trayMissing(uid, sinceSeconds);
    },
  });
  deps.attach(trays);
  const sync = () => trays.sync().catch((e: unknown) => log.error('could not open the users’ tray sockets', { error: String(e) }));
  return {
    name: 'tray',
    start: async () => {
      await sync();
      ctx.every(SYNC_MS, () => void sync());
    },
    stop: () => trays.close(),
  };
}
