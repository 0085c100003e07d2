import { join } from 'node:path';
import { readBounded } from '../../os/file-read';
import type { CommandRunner } from '../../os/command-runner';
import { parseXdgUserDirs } from '../../software/downloads/file-folders';
import type { HomeFoldersLogger, HomeLookup } from '../home-folders';

/**
 * `getent passwd <uid>`, which asks NSS, so directory accounts (sssd,
 * winbind) have their homes too, then `~/.config/user-dirs.dirs` for a
 * desktop that moved or translated Downloads. That file is the user's: it is
 * read as the agent (root) through the bounded reader (agent/os/file-read.ts),
 * so a link there (to `/dev/zero`, to a root-only file), a FIFO or a file over
 * 64 KiB is refused, said once in the log with its code, and the user keeps
 * the usual folders under their home.
 */
export function getentHomes(runner: CommandRunner, logger?: HomeFoldersLogger): HomeLookup {
  return async (session) => {
    const result = await runner.run('getent', ['passwd', String(session.uid)], 10_000);
    const home = result.code === 0 ? result.stdout.split('\n')[0]?.split(':')[5] : undefined;
    if (!home || !home.startsWith('/') || home.includes('\0')) return undefined;
    const read = await readBounded(join(home, '.config', 'user-dirs.dirs'));
    // Absent is the usual case (no desktop has written one): nothing to say.
    if (!read.ok && read.reason !== 'gone')
      logger?.warn("a user's user-dirs.dirs was not read; their usual folders are watched", {
        uid: session.uid,
        code: read.code,
        reason: read.reason,
        ...(read.errno ? { errno: read.errno } : {}),
      });
    return { uid: session.uid, home, ...parseXdgUserDirs(read.ok ? read.bytes.toString('utf8') : '', home) };
  };
}
