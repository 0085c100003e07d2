import type { CommandRunner } from '../os/command-runner';

export { type GroupSource, roleFor } from '../core/sessions';
import type { GroupSource } from '../core/sessions';

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
