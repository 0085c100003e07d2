import type { DownloadsOs } from './downloads/downloads-os';
import type { ProgramsOs } from './programs/programs-os';

/**
 * This OS's software facts, chosen once by the composition root
 * (cli/software-for.ts) from the per-OS modules: nothing below it asks which
 * OS it runs on.
 */
export interface SoftwareOs {
  programs: ProgramsOs;
  downloads: DownloadsOs;
}
