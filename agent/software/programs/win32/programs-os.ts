import type { ProgramsOs } from '../programs-os';

/** Windows: the source's uid is the session number; services run in session 0, or as SYSTEM and the service accounts. */
export const WIN32_PROGRAMS: ProgramsOs = {
  isPersonsProcess: (uid, user) =>
    uid !== undefined && uid > 0 && user !== undefined && !/^(nt authority\\)?(system|local service|network service)$/i.test(user.trim()),
};
