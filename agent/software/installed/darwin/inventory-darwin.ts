import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandRunner } from '../../../os/command-runner';
import { parsePlistDict, str } from '../../../os/darwin/plist';
import { readBounded } from '../../../os/file-read';
import {
  type InstalledProgram,
  type InventorySnapshot,
  type InventorySource,
  type UnreadSource,
  MAX_PROGRAMS_PER_SOURCE,
  distinct,
  inventoryText,
  program,
  reasonOf,
  unreadable,
} from '../inventory-source';

/**
 * macOS: application bundles, as Finder shows them, in `/Applications` and in
 * each user's `~/Applications` (`/Users/<name>/Applications`): every
 * `Name.app` folder at the top and one folder down (`/Applications/Utilities`,
 * `/Applications/Adobe Photoshop 2024/`), not inside other bundles. Each is
 * named by its `Contents/Info.plist`: `CFBundleName` (else
 * `CFBundleDisplayName`, else the folder's name without `.app`) and
 * `CFBundleShortVersionString` (else `CFBundleVersion`).
 *
 * A user's folder is theirs to fill with anything, so: links are not
 * followed (a bundle that is a link is not listed; `Info.plist` is opened
 * with O_NOFOLLOW and O_NONBLOCK, and must be a regular file of at most
 * 1 MiB); a folder holding more bundles than the cap is left unread (what it
 * held before is kept) rather than blinding the whole computer's inventory;
 * an `Info.plist` that cannot be read as a plist still lists the bundle, by
 * its folder's name. Binary plists (`bplist00`, which Xcode writes for many
 * apps) are converted by `plutil -convert xml1` when a runner is given, then
 * read by the same parser as everything else.
 */
export interface DarwinInventoryOptions {
  /** Machine-wide application folders; default `/Applications`. */
  systemFolders?: readonly string[];
  /** Where the home folders are; each `<home>/Applications` is read. Default `/Users`. */
  usersRoot?: string;
  /** Runs `plutil` for binary plists; without it such a bundle is named by its folder. */
  runner?: CommandRunner;
  /** Bundles per folder at most (default 10,000); past it the folder is left unread. */
  maxBundlesPerFolder?: number;
}

export const MAX_INFO_PLIST_BYTES = 1024 * 1024;
const PLIST_LIMITS = { maxLength: MAX_INFO_PLIST_BYTES, maxDepth: 32 };
/** Entries looked at per folder (bundles or not): a folder of a million empty files is not worth the agent's time. */
const MAX_ENTRIES_PER_FOLDER = 50_000;
const PLUTIL_TIMEOUT_MS = 10_000;

export const bundleSource = (folder: string): string => `bundles:${folder}`;

/** Name and version from an Info.plist's text; undefined when it is not a plist dict. */
export function bundleInfo(text: string): { name?: string; version?: string } | undefined {
  try {
    const dict = parsePlistDict(text, PLIST_LIMITS);
    const name = inventoryText(str(dict, 'CFBundleName')) ?? inventoryText(str(dict, 'CFBundleDisplayName'));
    const version = inventoryText(str(dict, 'CFBundleShortVersionString')) ?? inventoryText(str(dict, 'CFBundleVersion'));
    return { ...(name ? { name } : {}), ...(version ? { version } : {}) };
  } catch {
    return undefined;
  }
}

interface FolderRead {
  programs: InstalledProgram[];
  skipped: number;
}

export class BundleInventory implements InventorySource {
  private readonly systemFolders: readonly string[];
  private readonly usersRoot: string;
  private readonly max: number;

  constructor(private readonly options: DarwinInventoryOptions = {}) {
    this.systemFolders = options.systemFolders ?? ['/Applications'];
    this.usersRoot = options.usersRoot ?? '/Users';
    this.max = options.maxBundlesPerFolder ?? MAX_PROGRAMS_PER_SOURCE;
  }

  async list(): Promise<InventorySnapshot> {
    const folders = [...this.systemFolders];
    const unread: UnreadSource[] = [];
    try {
      const entries = (await readdir(this.usersRoot, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of entries) {
        if (!entry.isDirectory() || entry.name.startsWith('.') || entry.name === 'Shared') continue;
        folders.push(join(this.usersRoot, entry.name, 'Applications'));
      }
    } catch (e) {
      unread.push({ source: bundleSource(join(this.usersRoot, '*', 'Applications')), code: 'INV_ERR_INVENTORY_UNREADABLE', message: reasonOf(e) });
    }
    const programs: InstalledProgram[] = [];
    const sources: string[] = [];
    let skipped = 0;
    for (const folder of folders) {
      const source = inventoryText(bundleSource(folder));
      if (!source) continue;
      try {
        const read = await this.readFolder(folder, source);
        programs.push(...read.programs);
        skipped += read.skipped;
        sources.push(source);
      } catch (e) {
        unread.push({ source, code: 'INV_ERR_INVENTORY_UNREADABLE', message: reasonOf(e) });
      }
    }
    if (sources.length === 0) throw unreadable(unread.map((u) => `${u.source}: ${u.message}`).join('; ') || 'no application folder');
    return { programs: distinct(programs), sources, unread, skipped };
  }

  /** Every bundle in `folder` and one level down. A folder that does not exist holds nothing; one that cannot be listed throws. */
  private async readFolder(folder: string, source: string): Promise<FolderRead> {
    const bundles = await this.bundlesIn(folder, true);
    if (bundles.length > this.max) throw unreadable(`${folder}: more than ${this.max} bundles`);
    const programs: InstalledProgram[] = [];
    let skipped = 0;
    for (const bundle of bundles) {
      const p = await this.readBundle(bundle, source);
      if (p) programs.push(p);
      else skipped++;
    }
    return { programs, skipped };
  }

  private async bundlesIn(folder: string, descend: boolean): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      // A sub-folder that cannot be listed is skipped; the folder itself is then unread.
      if (!descend) return [];
      throw unreadable(`${folder}: ${code ?? 'cannot be listed'}`);
    }
    if (entries.length > MAX_ENTRIES_PER_FOLDER) throw unreadable(`${folder}: more than ${MAX_ENTRIES_PER_FOLDER} entries`);
    const found: string[] = [];
    for (const entry of entries) {
      // Dirent types come from lstat: a link to a folder is a link, and is not followed.
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const path = join(folder, entry.name);
      if (entry.name.toLowerCase().endsWith('.app')) found.push(path);
      else if (descend) found.push(...(await this.bundlesIn(path, false)));
      if (found.length > this.max) break;
    }
    return found.sort();
  }

  private async readBundle(bundle: string, source: string): Promise<InstalledProgram | undefined> {
    const folderName = bundle.slice(bundle.lastIndexOf('/') + 1).replace(/\.app$/i, '');
    const plistPath = join(bundle, 'Contents', 'Info.plist');
    // The bundle may be in a user's own Applications folder: read without following a link or waiting on a FIFO.
    const file = await readBounded(plistPath, MAX_INFO_PLIST_BYTES);
    // No Info.plist (or one that is a link, a FIFO, a folder, or too large): not a bundle anyone can launch.
    if (!file.ok) return undefined;
    let text: string | undefined;
    if (file.bytes.subarray(0, 6).toString('latin1') === 'bplist') text = await this.convertBinary(plistPath);
    else text = file.bytes.toString('utf8');
    const info = text === undefined ? undefined : bundleInfo(text);
    return program(source, { name: info?.name ?? folderName, version: info?.version });
  }

  private async convertBinary(path: string): Promise<string | undefined> {
    if (!this.options.runner) return undefined;
    try {
      const result = await this.options.runner.run('plutil', ['-convert', 'xml1', '-o', '-', '--', path], PLUTIL_TIMEOUT_MS);
      return result.code === 0 && result.stdout.length <= MAX_INFO_PLIST_BYTES * 4 ? result.stdout : undefined;
    } catch {
      return undefined;
    }
  }
}
