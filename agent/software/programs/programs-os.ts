/**
 * What the process guard needs to know about the OS beyond its process
 * source: facts, one module per OS (linux/, darwin/, win32/), chosen once by
 * the composition root (cli/software-for.ts).
 */
export interface ProgramsOs {
  /**
   * Whether a process is a person's own, from what the source gave (the
   * real uid; on Windows the session number and the account name): only a
   * person's installer is reported as one.
   */
  isPersonsProcess(uid: number | undefined, user: string | undefined): boolean;
}
