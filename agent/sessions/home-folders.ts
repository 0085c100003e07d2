import { join, win32 } from 'node:path';
import type { Platform } from '../../shared/protocol';
import { readBounded } from '../os/file-read';
import type { CommandRunner } from '../os/command-runner';
import type { SignedInUser } from '../software/downloads/file-folders';
import { parseXdgUserDirs } from '../software/downloads/file-folders';
import type { UserSession } from './session-directory';

/** Where a signed-in user's files are: their home and, where the desktop says so, their downloads and desktop folders. */
export interface HomeFolders {
  of(session: UserSession): Promise<SignedInUser | undefined>;
}

const SAFE_NAME = /^[A-Za-z0-9._][A-Za-z0-9._@$ -]{0,255}$/;
const safeName = (name: string) => SAFE_NAME.test(name) && !/^\.+$/.test(name);

export interface HomeFoldersLogger {
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

/**
 * Linux: `getent passwd <uid>`, which asks NSS, so directory accounts
 * (sssd, winbind) have their homes too, then `~/.config/user-dirs.dirs` for a
 * desktop that moved or translated Downloads. That file is the user's: it is
 * read as the agent (root) through the bounded reader (agent/os/file-read.ts),
 * so a link there (to `/dev/zero`, to a root-only file), a FIFO or a file over
 * 64 KiB is refused, said once in the log with its code, and the user keeps
 * the usual folders under their home. macOS: `/Users/<name>`.
 * Windows: `C:\Users\<name>`, the default profile folder; a moved profile is
 * not found (the registry's ProfileList would say, and is not read yet).
 */
export class OsHomeFolders implements HomeFolders {
  private readonly cache = new Map<string, SignedInUser | undefined>();

  constructor(
    private readonly platform: Platform,
    private readonly runner: CommandRunner,
    private readonly logger?: HomeFoldersLogger,
  ) {}

  async of(session: UserSession): Promise<SignedInUser | undefined> {
    const key = `${session.uid}:${session.user}`;
    if (this.cache.has(key)) return this.cache.get(key);
    const found = await this.lookUp(session).catch(() => undefined);
    this.cache.set(key, found);
    if (this.cache.size > 1000) this.cache.delete(this.cache.keys().next().value!);
    return found;
  }

  private async lookUp(session: UserSession): Promise<SignedInUser | undefined> {
    switch (this.platform) {
      case 'win32':
        return safeName(session.user) ? { uid: session.uid, home: win32.join('C:\\Users', session.user) } : undefined;
      case 'darwin':
        return safeName(session.user) ? { uid: session.uid, home: `/Users/${session.user}` } : undefined;
      case 'linux': {
        const result = await this.runner.run('getent', ['passwd', String(session.uid)], 10_000);
        const home = result.code === 0 ? result.stdout.split('\n')[0]?.split(':')[5] : undefined;
        if (!home || !home.startsWith('/') || home.includes('\0')) return undefined;
        const read = await readBounded(join(home, '.config', 'user-dirs.dirs'));
        // Absent is the usual case (no desktop has written one): nothing to say.
        if (!read.ok && read.reason !== 'gone')
          this.logger?.warn("a user's user-dirs.dirs was not read; their usual folders are watched", {
            uid: session.uid,
            code: read.code,
            reason: read.reason,
            ...(read.errno ? { errno: read.errno } : {}),
          });
        return { uid: session.uid, home, ...parseXdgUserDirs(read.ok ? read.bytes.toString('utf8') : '', home) };
      }
    }
  }
}
