import type { ProgramsOs } from '../programs-os';

/** macOS: uids from 501 are people's accounts (below are the OS's; root is an administrator's). */
export const DARWIN_PROGRAMS: ProgramsOs = {
  isPersonsProcess: (uid) => uid !== undefined && uid >= 501,
};
