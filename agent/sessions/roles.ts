import type { Policy } from '../../shared/policy/schema';
import type { CommandRunner } from '../os/command-runner';

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

/** A name `id` would take for an option or that no account can have. */
const SAFE_USER = /^[A-Za-z0-9._][A-Za-z0-9._@\\$ -]{0,255}$/;

/**
 * Linux and macOS: `id -Gn -- <user>`, which asks NSS, so accounts from a
 * directory (sssd, winbind) get their directory groups too. A user `id`
 * cannot resolve has no groups, and so the default role.
 */
export class IdCommandGroups implements GroupSource {
  constructor(private readonly runner: CommandRunner) {}

  async groupsOf(user: string): Promise<string[]> {
    if (!SAFE_USER.test(user)) return [];
    const result = await this.runner.run('id', ['-Gn', '--', user], 10_000).catch(() => undefined);
    if (!result || result.code !== 0) return [];
    return result.stdout
      .trim()
      .split(/\s+/)
      .filter((g) => g.length > 0 && g.length <= 256)
      .slice(0, 1000);
  }
}
