import { readFile } from 'node:fs/promises';
import { join, win32 } from 'node:path';
import type { Platform } from '../../shared/protocol';
import type { CommandRunner } from '../usb/command-runner';
import type { SignedInUser } from '../software/file-folders';
import { parseXdgUserDirs } from '../software/file-folders';
import type { UserSession } from './session-directory';

/** Where a signed-in user's files are: their home and, where the desktop says so, their downloads and desktop folders. */
export interface HomeFolders {
  of(session: UserSession): Promise<SignedInUser | undefined>;
}

const SAFE_NAME = /^[A-Za-z0-9._][A-Za-z0-9._@$ -]{0,255}$/;
const safeName = (name: string) => SAFE_NAME.test(name) && !/^\.+$/.test(name);

/**
 * Linux: `getent passwd <uid>`, which asks NSS, so directory accounts
 * (sssd, winbind) have their homes too, then `~/.config/user-dirs.dirs` for a
 * desktop that moved or translated Downloads. macOS: `/Users/<name>`.
 * Windows: `C:\Users\<name>`, the default profile folder; a moved profile is
 * not found (the registry's ProfileList would say, and is not read yet).
 */
export class OsHomeFolders implements HomeFolders {
  private readonly cache = new Map<string, SignedInUser | undefined>();

  constructor(
    private readonly platform: Platform,
    private readonly runner: CommandRunner,
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
        const dirs = await readFile(join(home, '.config', 'user-dirs.dirs'), 'utf8').catch(() => '');
        return { uid: session.uid, home, ...parseXdgUserDirs(dirs, home) };
      }
    }
  }
}
