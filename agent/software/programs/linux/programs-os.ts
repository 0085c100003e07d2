import type { ProgramsOs } from '../programs-os';

/** Linux: uids from 1000 are people's accounts (below are the OS's; root is an administrator's), except nobody (65534). */
export const LINUX_PROGRAMS: ProgramsOs = {
  isPersonsProcess: (uid) => uid !== undefined && uid >= 1000 && uid !== 65534,
};
