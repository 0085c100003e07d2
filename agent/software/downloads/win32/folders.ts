import { win32 } from 'node:path';
import type { DownloadsOs, FolderPlace } from '../downloads-os';

/** Windows: NTFS ignores case, the folders are where the environment says, no account's files are exempt by number. */
export const WIN32_DOWNLOADS: DownloadsOs = {
  paths: { path: win32, foldsCase: true },
  userFolders: (user, home, within) => {
    const local = within(user.localAppData, win32.join(home, 'AppData', 'Local'));
    return [
      { path: within(user.temp, win32.join(local, 'Temp')), depth: 1, purpose: 'temp' },
      { path: win32.join(local, 'Programs'), depth: 2, purpose: 'user-programs' },
    ];
  },
  sharedFolders: (env) => {
    const drive = env.SystemDrive && /^[A-Za-z]:$/.test(env.SystemDrive) ? env.SystemDrive : 'C:';
    const temp = env.TEMP ?? env.TMP;
    const out: FolderPlace[] = temp ? [{ path: temp, depth: 1, purpose: 'temp' }] : [];
    out.push({ path: env.ProgramFiles ?? `${drive}\\Program Files`, depth: 2, purpose: 'programs' });
    out.push({ path: env['ProgramFiles(x86)'] ?? `${drive}\\Program Files (x86)`, depth: 2, purpose: 'programs' });
    return out;
  },
  unixFiles: false,
  isSystemAccount: () => false,
  appBundles: false,
  procFdPins: false,
  devicePaths: true,
};
