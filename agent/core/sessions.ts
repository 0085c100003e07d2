import type { Policy } from '../../shared/policy/schema';

// What every capability asks of the OS's sessions, and the role rule: the core's, so the roster
// (roster.ts) and the capabilities share one contract; the adapters are in agent/sessions/.

/** One person's sign-in on this computer, as the OS sees it. */
export interface UserSession {
  /** The OS's own id for the session (logind's session id, the Windows session number). */
  sessionId: string;
  uid: number;
  /** The account name; display only, never trusted for a decision. */
  user: string;
  /** In front of the screen now (not switched away from). */
  active: boolean;
  /** Signed in over the network (ssh, remote desktop). */
  remote: boolean;
  /** A desktop (x11, wayland, the Windows console) or a text terminal. */
  kind: 'graphical' | 'text' | 'other';
  /** When the session began, when the OS says. */
  since?: string;
}

/** Who is signed in on this computer: one implementation per OS, chosen in the composition root. */
export interface SessionDirectory {
  sessions(): Promise<UserSession[]>;
}

/** The groups a user belongs to, as the OS (and its directory: AD, LDAP) says. */
export interface GroupSource {
  groupsOf(user: string): Promise<string[]>;
}

/**
 * The user's role: the first of the policy's role definitions, in the order
 * the policy lists them, that names one of the user's groups (compared without
 * case, as Windows and AD do); otherwise the policy's default role, which a
 * school sets to its most restricted one.
 */
export function roleFor(policy: Policy, groups: readonly string[]): string {
  const mine = new Set(groups.map((g) => g.toLowerCase()));
  const found = policy.roles.definitions.find((d) => d.groups.some((g) => mine.has(g.toLowerCase())));
  return found?.id ?? policy.roles.default;
}
