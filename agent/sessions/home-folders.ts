import type { SignedInUser } from '../software/downloads/file-folders';
import type { UserSession } from './session-directory';

/** Where a signed-in user's files are: their home and, where the desktop says so, their downloads and desktop folders. */
export interface HomeFolders {
  of(session: UserSession): Promise<SignedInUser | undefined>;
}

const SAFE_NAME = /^[A-Za-z0-9._][A-Za-z0-9._@$ -]{0,255}$/;
/** An account name that can stand as one folder name: no separator, not `.` or `..`. */
export const safeName = (name: string) => SAFE_NAME.test(name) && !/^\.+$/.test(name);

export interface HomeFoldersLogger {
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

/** How this OS finds a signed-in user's folders (sessions/<os>/home-folder.ts), chosen in the composition root. */
export type HomeLookup = (session: UserSession) => Promise<SignedInUser | undefined>;

/** This OS's lookup, remembered per user (a thousand at most): the answer changes only with the account. */
export class OsHomeFolders implements HomeFolders {
  private readonly cache = new Map<string, SignedInUser | undefined>();

  constructor(private readonly lookUp: HomeLookup) {}

  async of(session: UserSession): Promise<SignedInUser | undefined> {
    const key = `${session.uid}:${session.user}`;
    if (this.cache.has(key)) return this.cache.get(key);
    const found = await this.lookUp(session).catch(() => undefined);
    this.cache.set(key, found);
    if (this.cache.size > 1000) this.cache.delete(this.cache.keys().next().value!);
    return found;
  }
}
