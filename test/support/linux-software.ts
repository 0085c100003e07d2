import { LINUX_DOWNLOADS } from '../../agent/software/downloads/linux/folders';
import { signalKiller } from '../../agent/software/programs/process-killer';
import { LINUX_PROGRAMS } from '../../agent/software/programs/linux/programs-os';

/** What cli/software-for.ts gives the agent on Linux besides its sources: the killer and the OS's facts. */
export const LINUX_SOFTWARE = { killer: signalKiller, os: { programs: LINUX_PROGRAMS, downloads: LINUX_DOWNLOADS } };
