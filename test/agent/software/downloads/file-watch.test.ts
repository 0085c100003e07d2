import { appendFileSync, chmodSync, mkdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ChokidarOptions, type FSWatcher, watch } from 'chokidar';
import type { WatchedFolder } from '../../../../agent/software/downloads/file-folders';
import { type FileSeen, FileWatch } from '../../../../agent/software/downloads/file-watch';
import { eventually, tempDir } from '../../../support/cli';
import { silentLogger } from '../../../support/harness';
import { LINUX_DOWNLOADS } from '../../../../agent/software/downloads/linux/folders';

/**
 * The file watch over real folders: files dropped the way browsers drop
 * them (written elsewhere, renamed in), hostile names and layouts, and
 * folders that vanish. After each hostile case a new file is still seen.
 */

const open: FileWatch[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((w) => w.stop()));
});

interface Rig {
  root: string;
  seen: FileSeen[];
  watch: FileWatch;
  /** Writes the file beside the folder and renames it in, as a browser does. */
  drop: (folder: string, name: string, content?: string | Buffer) => string;
  /** Waits (bounded) until a file with this path has been seen. */
  saw: (path: string) => Promise<FileSeen>;
}

async function rig(
  folders: (root: string) => WatchedFolder[],
  options: { excluded?: (root: string) => string[]; createWatcher?: (path: string, o: ChokidarOptions) => FSWatcher; before?: (root: string) => void } = {},
): Promise<Rig> {
  const root = tempDir('file-watch');
  const staging = join(root, '.staging');
  mkdirSync(staging);
  options.before?.(root);
  const seen: FileSeen[] = [];
  const watch = new FileWatch({
    paths: LINUX_DOWNLOADS.paths,
    folders: () => folders(root),
    excluded: [staging, ...(options.excluded?.(root) ?? [])],
    onSeen: (s) => seen.push(s),
    logger: silentLogger(),
    recheckMs: 100,
    stableMs: 200,
    stablePollMs: 50,
    pollingIntervalMs: 100,
    readyTimeoutMs: 10_000,
    ...(options.createWatcher ? { createWatcher: options.createWatcher } : {}),
  });
  open.push(watch);
  await watch.start();
  let n = 0;
  const drop = (folder: string, name: string, content: string | Buffer = 'MZ program') => {
    const temp = join(staging, `drop-${++n}`);
    writeFileSync(temp, content);
    const path = join(folder, name);
    renameSync(temp, path);
    return path;
  };
  const saw = (path: string) => eventually(() => seen.find((s) => s.path === path));
  return { root, seen, watch, drop, saw };
}

/**
 * Runs `fn` as `nobody` when the tests run as root (the whole process: Node
 * switches every thread), and puts root back whatever happens.
 */
async function unprivileged(fn: () => Promise<void>): Promise<void> {
  const root = process.geteuid?.() === 0;
  if (root) {
    process.setegid!(65534);
    process.seteuid!(65534);
  }
  try {
    await fn();
  } finally {
    if (root) {
      process.seteuid!(0);
      process.setegid!(0);
    }
  }
}

const downloads = (root: string): WatchedFolder => ({ path: join(root, 'Downloads'), depth: 2, purpose: 'downloads', owner: 1001, confineTo: root });

describe('the file watch', () => {
  it('sees a file dropped into a watched folder and one in a subfolder, with the folder it belongs to', async () => {
    const r = await rig((root) => [downloads(root)], { before: (root) => mkdirSync(join(root, 'Downloads')) });
    const d = join(r.root, 'Downloads');
    const seen = await r.saw(r.drop(d, 'game.exe'));
    expect(seen).toMatchObject({ kind: 'file', folder: { purpose: 'downloads', owner: 1001 } });
    mkdirSync(join(d, 'unzipped'));
    await r.saw(r.drop(join(d, 'unzipped'), 'tool.sh'));
  });

  it('does not report what was there before it started, and nothing past its depth', async () => {
    const r = await rig((root) => [{ ...downloads(root), depth: 0 }], {
      before: (root) => {
        mkdirSync(join(root, 'Downloads', 'deep'), { recursive: true });
        writeFileSync(join(root, 'Downloads', 'old.exe'), 'MZ');
      },
    });
    const d = join(r.root, 'Downloads');
    r.drop(join(d, 'deep'), 'too-deep.exe');
    await r.saw(r.drop(d, 'new.exe'));
    await r.watch.recheck();
    expect(r.seen.map((s) => s.path)).not.toContain(join(d, 'old.exe'));
    expect(r.seen.map((s) => s.path)).not.toContain(join(d, 'deep', 'too-deep.exe'));
  });

  it('hands a file on only once it has stopped growing (a download in progress)', async () => {
    const r = await rig((root) => [downloads(root)], { before: (root) => mkdirSync(join(root, 'Downloads')) });
    const path = join(r.root, 'Downloads', 'slow.exe');
    writeFileSync(path, 'MZ');
    for (let i = 0; i < 5; i++) {
      await new Promise((res) => setTimeout(res, 40));
      appendFileSync(path, Buffer.alloc(1000, i));
    }
    const sizeWhenSeen = await eventually(() => (r.seen.some((s) => s.path === path) ? statSync(path).size : undefined));
    expect(sizeWhenSeen).toBe(5002);
  });

  it('sees unicode, newline, markup and editor-swap names exactly as they are', async () => {
    const r = await rig((root) => [downloads(root)], { before: (root) => mkdirSync(join(root, 'Downloads')) });
    const d = join(r.root, 'Downloads');
    for (const name of [
      'Spiel für Kinder 🎮.exe',
      'two\nlines.exe',
      '<img src=x onerror=alert(1)>.exe',
      'gnp\u202E.exe',
      ' leading space.sh',
      '日本語.msi',
      '.game.exe.swp',
      'backup~',
    ]) {
      await r.saw(r.drop(d, name));
    }
  });

  it('survives a symlink loop and links to elsewhere: not followed, and a new file is still seen', async () => {
    const r = await rig((root) => [downloads(root)], { before: (root) => mkdirSync(join(root, 'Downloads')) });
    const d = join(r.root, 'Downloads');
    symlinkSync('.', join(d, 'loop'));
    symlinkSync(join(d, 'b'), join(d, 'a'));
    symlinkSync(join(d, 'a'), join(d, 'b'));
    symlinkSync('/usr/bin', join(d, 'bin'));
    mkdirSync(join(d, 'sub'));
    symlinkSync('..', join(d, 'sub', 'up'));
    await r.saw(r.drop(d, 'after-loops.exe'));
    await r.saw(r.drop(join(d, 'sub'), 'nested.exe'));
    // Nothing was reported from inside a link.
    expect(r.seen.filter((s) => /\/(loop|up|bin|a|b)\//.test(s.path))).toEqual([]);
  });

  it('survives an unreadable subfolder and file (run unprivileged: modes mean nothing to root)', async () => {
    await unprivileged(async () => {
      const r = await rig((root) => [downloads(root)], { before: (root) => mkdirSync(join(root, 'Downloads')) });
      try {
        const d = join(r.root, 'Downloads');
        mkdirSync(join(d, 'locked'));
        writeFileSync(join(d, 'locked', 'inside.exe'), 'MZ');
        chmodSync(join(d, 'locked'), 0o000);
        const unreadable = r.drop(d, 'unreadable.exe');
        chmodSync(unreadable, 0o000);
        await r.saw(unreadable);
        mkdirSync(join(d, 'locked-later'));
        chmodSync(join(d, 'locked-later'), 0o000);
        await r.saw(r.drop(d, 'after-locked.exe'));
        chmodSync(join(d, 'locked'), 0o755);
        chmodSync(join(d, 'locked-later'), 0o755);
      } finally {
        await r.watch.stop();
      }
    });
  });

  it('sees files again after the watched folder is deleted and re-created (chokidar alone does not)', async () => {
    const r = await rig((root) => [downloads(root)], { before: (root) => mkdirSync(join(root, 'Downloads')) });
    const d = join(r.root, 'Downloads');
    await r.saw(r.drop(d, 'before.exe'));
    rmSync(d, { recursive: true });
    await eventually(() => (r.watch.status()[0]!.status === 'missing' ? true : undefined));
    mkdirSync(d);
    // Made before the watch noticed the new folder: reported, because the folder is new.
    const early = r.drop(d, 'early.exe');
    await r.saw(early);
    await eventually(() => (r.watch.status()[0]!.status === 'watching' ? true : undefined));
    await r.saw(r.drop(d, 'after.exe'));
    // And once more, replaced in one go by another folder.
    renameSync(d, join(r.root, 'old-downloads'));
    mkdirSync(d);
    await r.saw(r.drop(d, 'replaced.exe'));
  });

  it('watches a folder that did not exist when it started, once it appears', async () => {
    const r = await rig((root) => [downloads(root)]);
    expect(r.watch.status()[0]!.status).toBe('missing');
    mkdirSync(join(r.root, 'Downloads'));
    await eventually(() => (r.watch.status()[0]!.status === 'watching' ? true : undefined));
    await r.saw(r.drop(join(r.root, 'Downloads'), 'first.exe'));
  });

  it("follows a user's folder that is a link inside their home, refuses one that leads outside it", async () => {
    const r = await rig(
      (root) => [
        { path: join(root, 'home', 'Downloads'), depth: 1, purpose: 'downloads', owner: 1001, confineTo: join(root, 'home') },
        { path: join(root, 'home', 'Desktop'), depth: 1, purpose: 'desktop', owner: 1001, confineTo: join(root, 'home') },
      ],
      {
        before: (root) => {
          mkdirSync(join(root, 'home', 'elsewhere'), { recursive: true });
          mkdirSync(join(root, 'outside'));
          symlinkSync(join(root, 'home', 'elsewhere'), join(root, 'home', 'Downloads'));
          symlinkSync(join(root, 'outside'), join(root, 'home', 'Desktop'));
        },
      },
    );
    expect(r.watch.status().map((s) => s.status)).toEqual(['watching', 'refused']);
    await r.saw(r.drop(join(r.root, 'home', 'elsewhere'), 'via-link.exe'));
  });

  it("never looks inside the agent's own data, even when a watched folder holds it", async () => {
    const r = await rig((root) => [downloads(root)], {
      before: (root) => mkdirSync(join(root, 'Downloads', 'agent-data', 'quarantine'), { recursive: true }),
      excluded: (root) => [join(root, 'Downloads', 'agent-data')],
    });
    const d = join(r.root, 'Downloads');
    writeFileSync(join(d, 'agent-data', 'quarantine', 'file'), 'MZ');
    await r.saw(r.drop(d, 'outside-data.exe'));
    await r.watch.recheck();
    expect(r.seen.filter((s) => s.path.includes('agent-data'))).toEqual([]);
  });

  it('on EMFILE logs and degrades that folder to polling; files are still seen', async () => {
    const created: FSWatcher[] = [];
    const r = await rig((root) => [downloads(root)], {
      before: (root) => mkdirSync(join(root, 'Downloads')),
      createWatcher: (path, o) => {
        const w = watch(path, o);
        created.push(w);
        return w;
      },
    });
    const d = join(r.root, 'Downloads');
    const emfile = Object.assign(new Error('EMFILE: too many open files, watch'), { code: 'EMFILE', errno: -24, syscall: 'watch' });
    created[0]!.emit('error', emfile);
    await eventually(() => (created.length >= 2 && r.watch.status()[0]!.mode === 'polling' && r.watch.status()[0]!.status === 'watching' ? true : undefined));
    expect(created.at(-1)!.options.usePolling).toBe(true);
    await r.saw(r.drop(d, 'while-polling.exe'));
    // Another error in polling mode is only counted.
    created.at(-1)!.emit('error', emfile);
    await r.saw(r.drop(d, 'still-polling.exe'));
  });

  it('a watcher that cannot even be created is logged, not thrown', async () => {
    const r = await rig((root) => [downloads(root)], {
      before: (root) => mkdirSync(join(root, 'Downloads')),
      createWatcher: () => {
        throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
      },
    });
    expect(r.watch.status()[0]!.errors).toBeGreaterThan(0);
  });

  it('stops cleanly, and twice', async () => {
    const r = await rig((root) => [downloads(root)], { before: (root) => mkdirSync(join(root, 'Downloads')) });
    await r.watch.stop();
    await r.watch.stop();
    r.drop(join(r.root, 'Downloads'), 'after-stop.exe');
    await new Promise((res) => setTimeout(res, 300));
    expect(r.seen).toEqual([]);
  });
});
