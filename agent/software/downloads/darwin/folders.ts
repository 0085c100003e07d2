import { posix } from 'node:path';
import type { DownloadsOs } from '../downloads-os';

/** macOS: APFS ignores case as shipped, uids below 500 are the system's, an `.app` folder is a program. */
export const DARWIN_DOWNLOADS: DownloadsOs = {
  paths: { path: posix, foldsCase: true },
  userFolders: (_user, home) => [{ path: posix.join(home, 'Applications'), depth: 0, purpose: 'user-programs' }],
  sharedFolders: () => [
    { path: '/Applications', depth: 0, purpose: 'programs' },
    // `/tmp` is a link to `/private/tmp`; the watch does not follow links at the top of a shared folder.
    { path: '/private/tmp', depth: 1, purpose: 'temp' },
  ],
  unixFiles: true,
  isSystemAccount: (uid) => uid < 500,
  appBundles: true,
  procFdPins: false,
  devicePaths: false,
};
