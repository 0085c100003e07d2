import { posix } from 'node:path';
import type { DownloadsOs } from '../downloads-os';

/** Linux: case-sensitive paths, uids below 1000 are the system's, `/proc/self/fd` for the quarantine's pins. */
export const LINUX_DOWNLOADS: DownloadsOs = {
  paths: { path: posix, foldsCase: false },
  userFolders: (_user, home) => [{ path: posix.join(home, '.local', 'bin'), depth: 0, purpose: 'user-programs' }],
  sharedFolders: () => [
    { path: '/tmp', depth: 1, purpose: 'temp' },
    { path: '/var/tmp', depth: 1, purpose: 'temp' },
    { path: '/opt', depth: 2, purpose: 'programs' },
    { path: '/usr/local/bin', depth: 0, purpose: 'programs' },
  ],
  unixFiles: true,
  isSystemAccount: (uid) => uid < 1000,
  appBundles: false,
  procFdPins: true,
  devicePaths: false,
};
