import type { Policy } from '../../shared/policy/schema';
import type { User } from '../../shared/protocol';
import { type GroupSource, type SessionDirectory, type UserSession, roleFor } from './sessions';

/** A session on the roster: the OS's view of it, and its user's role under the policy in force now. */
export interface RosterEntry extends UserSession {
  role: string;
}

export interface RosterOptions {
  /** This OS's session source (through the tick's shared read, agent/sessions/session-directory.ts). */
  directory: SessionDirectory;
  policy: () => Policy;
  /** The users' groups (`id -Gn`); absent (Windows today): everyone has the policy's default role. */
  groups?: GroupSource;
  /**
   * After a refresh in which the person at the screen, or their role, is no
   * longer who it was: whatever was decided for that person (a stick left in)
   * is decided again.
   */
  onScreenChanged?: (now: RosterEntry | undefined) => void;
}

/** Sessions kept on the roster at most: a terminal server has a few hundred. */
const MAX_SESSIONS = 2_000;

/**
 * Who is signed in on this computer, with which role: the one answer every
 * capability asks, read once per session tick. The role comes from the
 * user's groups, looked up once per sign-in (a process each on Linux and
 * macOS), and is worked out against the policy in force when asked, so a
 * policy that moves a group to another role applies at once.
 *
 * The person at the screen (whose role decides a USB device, and whose name
 * USB events carry) is the one local, active session: a desktop in front of
 * the screen, not one switched away from (fast user switching) and not one
 * from elsewhere (ssh, remote desktop); a local text console only when no
 * desktop is. With several (more than one seat), the first by session id.
 * Nobody there: undefined, and the policy's default role applies.
 *
 * What it answers comes from the last `refresh`, so asking costs nothing and
 * never waits on the OS; the session tick refreshes it first thing.
 */
export class Roster {
  private entries: UserSession[] = [];
  /** Groups per sign-in (`uid:user`), for as long as that user is signed in. */
  private readonly groups = new Map<string, { lookup: Promise<string[]>; settled?: string[] }>();
  private screenKey: string | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly options: RosterOptions) {}

  /** Reads the OS's sessions again; at most one read at a time (a caller during one waits for it). */
  refresh(): Promise<void> {
    this.refreshing ??= this.read().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** Everyone signed in, as of the last refresh, with their roles now. */
  signedIn(): RosterEntry[] {
    return this.entries.map((s) => this.withRole(s));
  }

  /** The person at the screen, as of the last refresh (see the class comment). */
  atScreen(): RosterEntry | undefined {
    const s = screenOf(this.entries);
    return s && this.withRole(s);
  }

  bySession(sessionId: string): RosterEntry | undefined {
    const s = this.entries.find((e) => e.sessionId === sessionId);
    return s && this.withRole(s);
  }

  /** A user's session, their local desktop first (a uid can have several: a desktop and an ssh login). */
  byUid(uid: number): RosterEntry | undefined {
    const mine = this.entries.filter((e) => e.uid === uid);
    const s = mine.find((e) => !e.remote && e.kind === 'graphical') ?? mine[0];
    return s && this.withRole(s);
  }

  /** The role of whoever has this uid; the policy's default role for someone not signed in. */
  roleOfUid(uid: number): string {
    return this.byUid(uid)?.role ?? this.options.policy().roles.default;
  }

  /**
   * The role of a session, looking its user's groups up if this sign-in has
   * not been seen (the session watcher asks as it records `session.started`,
   * usually just after a refresh that already did).
   */
  async roleOf(session: UserSession): Promise<string> {
    return roleFor(this.options.policy(), await this.groupsOf(session));
  }

  /** The person at the screen as events and requests name them. */
  userAtScreen(): User | undefined {
    return asUser(this.atScreen());
  }

  /** A signed-in user as events and requests name them; undefined for someone not on the roster. */
  userOf(uid: number): User | undefined {
    return asUser(this.byUid(uid));
  }

  private withRole(s: UserSession): RosterEntry {
    // Groups are settled for every entry once refresh has returned; a lookup still under way counts as none.
    return { ...s, role: roleFor(this.options.policy(), this.groups.get(keyOf(s))?.settled ?? []) };
  }

  private groupsOf(s: UserSession): Promise<string[]> {
    const key = keyOf(s);
    const known = this.groups.get(key);
    if (known) return known.lookup;
    const source = this.options.groups;
    // A lookup that fails gives no groups, so the default role, which a school sets to its most restricted.
    const entry: { lookup: Promise<string[]>; settled?: string[] } = {
      lookup: (source ? source.groupsOf(s.user).catch(() => [] as string[]) : Promise.resolve([] as string[])).then((g) => (entry.settled = g)),
    };
    this.groups.set(key, entry);
    return entry.lookup;
  }

  private async read(): Promise<void> {
    const sessions = (await this.options.directory.sessions()).slice(0, MAX_SESSIONS);
    for (const s of sessions) await this.groupsOf(s);
    // Someone who signed out has their groups looked up afresh next time: a group change counts from their next sign-in.
    const present = new Set(sessions.map(keyOf));
    for (const key of [...this.groups.keys()]) if (!present.has(key)) this.groups.delete(key);
    this.entries = sessions;
    const screen = this.atScreen();
    const key = screen && `${screen.sessionId}\u0000${screen.uid}\u0000${screen.role}`;
    if (key === this.screenKey) return;
    this.screenKey = key;
    this.options.onScreenChanged?.(screen);
  }
}

const keyOf = (s: UserSession) => `${s.uid}:${s.user}`;

const KIND_ORDER = { graphical: 0, text: 1, other: 2 } as const;

function screenOf(sessions: readonly UserSession[]): UserSession | undefined {
  return sessions
    .filter((s) => s.active && !s.remote && s.kind !== 'other')
    .sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || a.sessionId.localeCompare(b.sessionId))[0];
}

function asUser(entry: RosterEntry | undefined): User | undefined {
  // A session without an account name (logind left USER= out) is still that role's, but has no name to give.
  return entry && { name: entry.user || 'unknown', role: entry.role };
}
