import type { PlatformPath } from 'node:path';
import type { FolderPurpose, SignedInUser } from './file-folders';

/** How this OS's paths compare. */
export interface PathRules {
  /** node:path's rules for this OS's paths: win32 on Windows, posix elsewhere. */
  readonly path: PlatformPath;
  /** Whether two names that differ only in case name one file (NTFS and APFS as shipped); not on Linux. */
  readonly foldsCase: boolean;
}

/** A folder to watch, before it is given to anyone. */
export interface FolderPlace {
  path: string;
  depth: number;
  purpose: FolderPurpose;
}

/**
 * What the download watch, the file guard and the quarantine need to know
 * about the OS: facts, one module per OS (linux/, darwin/, win32/), chosen
 * once by the composition root (cli/software-for.ts), so that nothing here
 * asks which OS it runs on.
 */
export interface DownloadsOs {
  readonly paths: PathRules;
  /**
   * A person's own folders beyond Downloads and Desktop (`~/.local/bin`,
   * `~/Applications`, AppData's Temp and Programs). `within` keeps a folder
   * the user's settings name inside their home, else gives the fallback.
   */
  userFolders(user: SignedInUser, home: string, within: (candidate: string | undefined, fallback: string) => string): FolderPlace[];
  /** The folders everyone shares, from the service's environment where the OS keeps them there. */
  sharedFolders(env: Readonly<Record<string, string | undefined>>): FolderPlace[];
  /**
   * Whether files have a Unix mode and an owning uid. Not on Windows: there
   * the person a file is for is the owner of the folder it was saved in, and
   * the quarantine's folder is kept private by its ACL, not by chmod.
   */
  readonly unixFiles: boolean;
  /** Accounts whose files are never quarantined (the OS's own). */
  isSystemAccount(uid: number): boolean;
  /** Whether a new folder can be a program (a macOS `.app` bundle). */
  readonly appBundles: boolean;
  /** Whether `/proc/self/fd/<n>` names a folder held open, so the quarantine can pin the folders it works in. */
  readonly procFdPins: boolean;
  /** Whether a path can be a device path (`\\?\`, `\\.\`), which the quarantine never writes to. */
  readonly devicePaths: boolean;
}
