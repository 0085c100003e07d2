import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type ChokidarOptions, type FSWatcher, watch } from 'chokidar';
import type { Logger } from '../../../node-common/logging';
import type { PathRules } from './downloads-os';
import { MAX_WATCHED_FOLDERS, type WatchedFolder, isInside } from './file-folders';

/**
 * The file watch: one chokidar 4 watcher per folder, looked after by a
 * periodic check that chokidar's known gaps make necessary.
 *
 * - A watched folder deleted and re-created is not seen again by chokidar
 *   (paulmillr/chokidar#917, #1278), and a folder that does not exist when
 *   the watch starts is never watched. Every `recheckMs` each folder's
 *   identity (device and inode of what its path resolves to) is compared
 *   with the one its watcher was armed on; a folder that has gone is
 *   disarmed, one that has (re)appeared or been replaced is armed afresh,
 *   and then its existing files are new, so they are reported.
 * - chokidar reads a folder and only then starts watching it, so a file
 *   created in between is never reported; and the kernel's event queue can
 *   overflow during a large unzip, which Node drops silently. The same check
 *   lists each folder's own entries (at most {@link RESCAN_LIMIT}) and hands
 *   on, once their size has settled, files chokidar does not know.
 * - `atomic` is off: with it chokidar ignores names like `.game.swp` and
 *   `game~` (editor swap files), which a program can be named too.
 * - Links are never followed inside a folder (no symlink loops; a link to
 *   `/usr/bin/sudo` is not a new program). A folder that is itself a link is
 *   followed, for a user's folder only to somewhere inside their home.
 * - Out of file handles or kernel watches (`EMFILE`, `ENFILE`, `ENOSPC`; on
 *   macOS chokidar 4 has no FSEvents and holds a descriptor per entry,
 *   paulmillr/chokidar#1369): that folder is logged and watched by polling
 *   from then on, at most one level deep. Nothing here throws.
 */

export interface FileSeen {
  path: string;
  folder: WatchedFolder;
  kind: 'file' | 'directory';
}

export interface FileWatchOptions {
  /** This OS's path rules (from its DownloadsOs). */
  paths: PathRules;
  folders: () => readonly WatchedFolder[] | Promise<readonly WatchedFolder[]>;
  /** Folders never looked into: the agent's data folder, with its quarantine. */
  excluded: readonly string[];
  /** A file appeared or changed and its size has settled. Must not throw; errors are logged. */
  onSeen: (seen: FileSeen) => void;
  logger: Logger;
  /** How often the folder list and each folder's identity are checked. Default 5 s. */
  recheckMs?: number;
  /** A file is handed on once its size has not changed for this long (a download still being written waits). Default 2 s. */
  stableMs?: number;
  /** How often the size of a file being written is looked at. Default 250 ms. */
  stablePollMs?: number;
  /** The polling interval of a folder degraded to polling. Default 5 s. */
  pollingIntervalMs?: number;
  /** The longest `start()` waits for the first scans. Default 30 s. */
  readyTimeoutMs?: number;
  /** chokidar's `watch`, replaceable in tests. */
  createWatcher?: (path: string, options: ChokidarOptions) => FSWatcher;
}

export type FolderStatus = 'watching' | 'missing' | 'refused';

interface FolderState {
  folder: WatchedFolder;
  status: FolderStatus;
  real?: string;
  identity?: string;
  watcher?: FSWatcher;
  ready?: Promise<void>;
  mode: 'events' | 'polling';
  /** Was this folder ever listed while absent, refused or replaced: then what is in it when it is armed is new. */
  changedSinceListed: boolean;
  errors: number;
  lastLoggedAt: number;
  /** Files the rescan handed on, by name, with the size and mtime they had. */
  rescanned: Map<string, string>;
}

/** Most entries of one folder looked at by each rescan. */
export const RESCAN_LIMIT = 2000;
const SETTLE_LIMIT_MS = 10 * 60_000;
const LOG_EVERY_MS = 60_000;

export class FileWatch {
  private readonly states = new Map<string, FolderState>();
  private readonly settling = new Set<string>();
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private stopped = false;
  private excludedReal: string[] = [];

  constructor(private readonly options: FileWatchOptions) {
    this.log = options.logger.child({ component: 'file-watch' });
  }

  private get recheckMs() {
    return this.options.recheckMs ?? 5000;
  }
  private get stableMs() {
    return this.options.stableMs ?? 2000;
  }
  private get stablePollMs() {
    return this.options.stablePollMs ?? 250;
  }

  /** Arms every folder that exists and waits (bounded) for their first scans. */
  async start(): Promise<void> {
    this.stopped = false;
    this.excludedReal = await Promise.all(this.options.excluded.map((p) => realpath(p).catch(() => resolve(p))));
    await this.recheck();
    await this.ready();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.checking?.catch(() => undefined);
    await Promise.all([...this.states.values()].map((s) => this.disarm(s)));
    this.states.clear();
  }

  /** Waits until every armed folder has finished its first scan, or the ready timeout. */
  async ready(): Promise<void> {
    const limit = this.options.readyTimeoutMs ?? 30_000;
    let timeout: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timeout = setTimeout(r, limit)));
    await Promise.race([Promise.all([...this.states.values()].map((s) => s.ready)), late]);
    clearTimeout(timeout);
  }

  /** What each folder is doing now (diagnostics and tests). */
  status(): Array<{ path: string; status: FolderStatus; mode: 'events' | 'polling'; real?: string; errors: number }> {
    return [...this.states.values()].map((s) => ({
      path: s.folder.path,
      status: s.status,
      mode: s.mode,
      ...(s.real ? { real: s.real } : {}),
      errors: s.errors,
    }));
  }

  /** Looks at the folder list and every folder now; runs one at a time. */
  recheck(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (!this.checking) {
      this.checking = this.checkAll()
        .catch((e: unknown) => {
          this.log.error('checking the watched folders failed', { error: String(e) });
        })
        .finally(() => {
          this.checking = undefined;
        });
    }
    return this.checking;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.recheck().finally(() => this.schedule());
    }, this.recheckMs);
    this.timer.unref();
  }

  private key(path: string): string {
    return this.options.paths.foldsCase ? resolve(path).toLowerCase() : resolve(path);
  }

  private async checkAll(): Promise<void> {
    let folders: readonly WatchedFolder[];
    try {
      folders = (await this.options.folders()).slice(0, MAX_WATCHED_FOLDERS);
    } catch (e) {
      this.log.warn('could not work out the folders to watch; keeping the current ones', { error: String(e) });
      folders = [...this.states.values()].map((s) => s.folder);
    }
    const wanted = new Set<string>();
    for (const folder of folders) {
      if (this.stopped) return;
      const key = this.key(folder.path);
      wanted.add(key);
      let state = this.states.get(key);
      if (!state) {
        state = { folder, status: 'missing', mode: 'events', changedSinceListed: false, errors: 0, lastLoggedAt: -Infinity, rescanned: new Map() };
        this.states.set(key, state);
      } else if (state.folder.depth !== folder.depth) {
        await this.disarm(state);
      }
      state.folder = folder;
      await this.checkOne(state);
    }
    for (const [key, state] of this.states) {
      if (wanted.has(key)) continue;
      await this.disarm(state);
      this.states.delete(key);
    }
  }

  private async checkOne(state: FolderState): Promise<void> {
    const where = await this.locate(state.folder);
    if (this.stopped) return;
    if (where.kind !== 'found') {
      if (state.watcher) this.log.info('a watched folder has gone; watching for it to come back', { folder: state.folder.path });
      await this.disarm(state);
      if (where.kind === 'refused' && state.status !== 'refused') this.log.warn('not watching a folder', { folder: state.folder.path, why: where.why });
      state.status = where.kind;
      state.changedSinceListed = true;
      return;
    }
    if (state.watcher && state.identity === where.identity && state.real === where.real) {
      await this.rescan(state);
      return;
    }
    const replaced = state.watcher !== undefined;
    if (replaced) this.log.info('a watched folder was replaced; watching the new one', { folder: state.folder.path });
    await this.disarm(state);
    this.arm(state, where.real, where.identity, !(replaced || state.changedSinceListed));
  }

  private async locate(
    folder: WatchedFolder,
  ): Promise<{ kind: 'found'; real: string; identity: string } | { kind: 'missing' } | { kind: 'refused'; why: string }> {
    let real: string;
    try {
      const link = await lstat(folder.path);
      if (!link.isDirectory() && !link.isSymbolicLink()) return { kind: 'missing' };
      real = await realpath(folder.path);
      const stats = await stat(real, { bigint: true });
      if (!stats.isDirectory()) return { kind: 'missing' };
      if (folder.confineTo) {
        const home = await realpath(folder.confineTo).catch(() => folder.confineTo!);
        if (!isInside(this.options.paths, home, real)) return { kind: 'refused', why: `it leads outside ${folder.confineTo}` };
      }
      if (this.excludedReal.some((x) => isInside(this.options.paths, x, real))) return { kind: 'refused', why: "it is inside the agent's own data" };
      return { kind: 'found', real, identity: `${stats.dev}:${stats.ino}` };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') this.log.debug('cannot look at a watched folder', { folder: folder.path, code });
      return { kind: 'missing' };
    }
  }

  private isExcluded(path: string): boolean {
    return this.excludedReal.some((x) => isInside(this.options.paths, x, path));
  }

  private arm(state: FolderState, real: string, identity: string, ignoreInitial: boolean): void {
    const polling = state.mode === 'polling';
    const interval = this.options.pollingIntervalMs ?? 5000;
    const options: ChokidarOptions = {
      persistent: true,
      ignoreInitial,
      followSymlinks: false,
      depth: polling ? Math.min(state.folder.depth, 1) : state.folder.depth,
      ignorePermissionErrors: true,
      // chokidar's `atomic` also hides editor swap names (`.x.swp`, `x~`): a program named so must still be seen.
      atomic: false,
      awaitWriteFinish: { stabilityThreshold: this.stableMs, pollInterval: this.stablePollMs },
      usePolling: polling,
      interval,
      binaryInterval: interval,
      ignored: (path: string) => this.isExcluded(path),
    };
    let watcher: FSWatcher;
    try {
      watcher = (this.options.createWatcher ?? watch)(real, options);
    } catch (e) {
      this.onError(state, undefined, e);
      return;
    }
    state.watcher = watcher;
    state.real = real;
    state.identity = identity;
    state.status = 'watching';
    state.changedSinceListed = false;
    state.rescanned.clear();
    const seen = (path: string, kind: FileSeen['kind']) => {
      if (state.watcher !== watcher || this.stopped) return;
      this.emit({ path, folder: state.folder, kind });
    };
    watcher.on('add', (path) => seen(path, 'file'));
    watcher.on('change', (path) => seen(path, 'file'));
    watcher.on('addDir', (path) => {
      if (this.key(path) !== this.key(real)) seen(path, 'directory');
    });
    watcher.on('error', (e) => this.onError(state, watcher, e));
    state.ready = new Promise<void>((r) => watcher.once('ready', () => r())).then(() => this.rescan(state));
  }

  private async disarm(state: FolderState): Promise<void> {
    const watcher = state.watcher;
    state.watcher = undefined;
    state.ready = undefined;
    state.identity = undefined;
    if (!watcher) return;
    await watcher.close().catch((e: unknown) => this.log.debug('closing a watcher failed', { error: String(e) }));
  }

  private emit(seen: FileSeen): void {
    try {
      this.options.onSeen(seen);
    } catch (e) {
      this.log.error('handling a seen file failed', { error: String(e) });
    }
  }

  private onError(state: FolderState, watcher: FSWatcher | undefined, e: unknown): void {
    if (watcher && state.watcher !== watcher) return;
    state.errors++;
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    const exhausted = code === 'EMFILE' || code === 'ENFILE' || code === 'ENOSPC';
    if (exhausted && state.mode === 'events') {
      state.mode = 'polling';
      this.log.warn('out of file handles or watches: this folder is polled from now on, one level deep', { folder: state.folder.path, code });
      // Re-armed by the next check, in polling mode; files that arrive meanwhile are found by its rescan.
      void this.disarm(state).then(() => {
        state.changedSinceListed = false;
        return this.recheck();
      });
      return;
    }
    const now = Date.now();
    if (now - state.lastLoggedAt >= LOG_EVERY_MS) {
      state.lastLoggedAt = now;
      this.log.warn('watching a folder reported an error; it goes on', { folder: state.folder.path, code, error: String(e).slice(0, 300) });
    }
  }

  /** Hands on files in the folder's own entries that chokidar does not know (see the class comment). */
  private async rescan(state: FolderState): Promise<void> {
    const watcher = state.watcher;
    const real = state.real;
    if (!watcher || !real || this.stopped) return;
    let names: string[];
    try {
      const dir = await readdir(real, { withFileTypes: true });
      names = dir
        .slice(0, RESCAN_LIMIT)
        .filter((d) => d.isFile())
        .map((d) => d.name);
    } catch {
      return;
    }
    if (state.watcher !== watcher) return;
    const known = new Set(watcher.getWatched()[real] ?? []);
    if (state.rescanned.size > RESCAN_LIMIT * 2) state.rescanned.clear();
    for (const name of names) {
      if (known.has(name)) continue;
      const path = join(real, name);
      if (this.isExcluded(path)) continue;
      void this.settleThenEmit(state, watcher, name, path);
    }
  }

  private async settleThenEmit(state: FolderState, watcher: FSWatcher, name: string, path: string): Promise<void> {
    if (this.settling.has(path)) return;
    this.settling.add(path);
    try {
      let last = '';
      let stableSince = Date.now();
      const started = Date.now();
      while (!this.stopped && state.watcher === watcher && Date.now() - started < SETTLE_LIMIT_MS) {
        let now: string;
        try {
          const s = await lstat(path);
          if (!s.isFile()) return;
          now = `${s.size}:${s.mtimeMs}`;
        } catch {
          return;
        }
        if (now !== last) {
          last = now;
          stableSince = Date.now();
        } else if (Date.now() - stableSince >= this.stableMs) {
          if (state.rescanned.get(name) === now) return;
          // chokidar may have caught up meanwhile: then it reports the file itself.
          if ((watcher.getWatched()[state.real ?? ''] ?? []).includes(name)) return;
          state.rescanned.set(name, now);
          this.emit({ path, folder: state.folder, kind: 'file' });
          return;
        }
        await new Promise((r) => setTimeout(r, this.stablePollMs));
      }
    } finally {
      this.settling.delete(path);
    }
  }
}
