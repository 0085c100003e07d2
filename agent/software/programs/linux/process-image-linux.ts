import { type BigIntStats, closeSync, constants, openSync, readSync, readlinkSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { elfLooksLikeLoader, interpreterOf, isLoaderName, loaderProgramIndex, scriptArgument } from '../process-launchers';
import { readProcText } from './proc-text';
import { isOsPath } from '../software-decision';
import type { ObservedProcess } from '../process-source';

/**
 * What a Linux process really runs, beyond the path its `exe` link shows:
 *
 * - **Its mount namespace.** `/proc/PID/exe` reads as a path in the
 *   process's own view of the file system. In a private mount namespace
 *   (`unshare -Urm`, then a tmpfs over /usr/lib/systemd) that path can name
 *   a file that is not the one at that path on the computer. So a process
 *   whose `ns/mnt` is neither the agent's nor init's is marked `private`,
 *   and its path is vouched for only when the file at that path here has
 *   the device and inode of the file the kernel mapped (`stat` through
 *   `/proc/PID/exe`). In the computer's own namespace the kernel's path is
 *   the file's own (a pupil cannot mount over an OS folder there; a chroot
 *   shows in the path, which is relative to the agent's root).
 * - **The loader's program.** `ld-linux-x86-64.so.2 ./prog` runs `prog`
 *   with the loader as its executable. The program named on the loader's
 *   command line is resolved against the process's own cwd or root
 *   (`/proc/PID/cwd`, `/proc/PID/root`) and must be one of the files mapped
 *   into it (`/proc/PID/maps`, by device and inode); its bytes are then read
 *   through `/proc/PID/map_files/`, the very mapping. A command line that
 *   names a file not mapped (rewritten, or lying) is not believed: the first
 *   mapped executable file that is not the loader and not one of the OS's
 *   own is judged instead. A renamed copy of the loader is known by its ELF
 *   headers (no interpreter of its own).
 * - **An interpreter's script** (`python3 x.py`, `bash x.sh`, `perl x.pl`,
 *   a shebang script): the script path on its command line, resolved the
 *   same way, for the school's rules (process-launchers.ts says what is not
 *   covered).
 *
 * Everything here is read synchronously, as the rest of the /proc poll is,
 * and bounded: command lines to 64 KiB, maps to 1 MiB, ELF headers to 4 KiB.
 * A process that exits meanwhile simply yields less.
 */

const MAX_CMDLINE = 64 * 1024;
const MAX_MAPS = 1024 * 1024;
const ELF_HEAD = 4096;

interface Mapped {
  range: string;
  path: string;
  dev: bigint;
  ino: bigint;
}

export type ImageFacts = Pick<ObservedProcess, 'name' | 'path' | 'readPath' | 'mountNamespace' | 'pathVouched' | 'via' | 'script'>;

export class LinuxProcessImages {
  private readonly home: ReadonlySet<string>;

  constructor(private readonly procRoot: string) {
    // The agent's own namespace and init's: a service manager may give the agent one of its own (PrivateTmp=), and people's sessions are in init's.
    const home = new Set<string>();
    for (const who of ['self', '1']) {
      const ns = this.link(join(procRoot, who, 'ns', 'mnt'));
      if (ns !== undefined) home.add(ns);
    }
    this.home = home;
  }

  /** The facts about what process `pid` runs, given its `exe` link as read (the ` (deleted)` suffix dropped). */
  inspect(pid: number, exePath: string): ImageFacts {
    const dir = join(this.procRoot, String(pid));
    const exeName = exePath.slice(exePath.lastIndexOf('/') + 1);
    const facts: ImageFacts = { name: exeName, path: exePath, readPath: join(dir, 'exe') };
    const ns = this.home.size > 0 ? this.link(join(dir, 'ns', 'mnt')) : undefined;
    const isPrivate = ns !== undefined && !this.home.has(ns);
    if (isPrivate) facts.mountNamespace = 'private';
    const exe = this.stat(join(dir, 'exe'));
    const vouch = (path: string, id: { dev: bigint; ino: bigint } | undefined) => {
      if (!isPrivate) return;
      const here = this.stat(path);
      facts.pathVouched = here !== undefined && id !== undefined && here.dev === id.dev && here.ino === id.ino;
    };
    vouch(exePath, exe);

    let argv: string[] | undefined;
    const cmdline = () => (argv ??= this.cmdline(dir));
    let programArgv: readonly string[] | undefined;

    const loader = exe ? this.loaderKind(exeName, exePath, isPrivate ? facts.pathVouched === true : true, dir) : undefined;
    if (exe && loader) {
      const program = this.loaderProgram(dir, cmdline(), exe, loader === 'by-name', isPrivate);
      if (program) {
        facts.via = { kind: 'loader', name: exeName, path: exePath };
        facts.name = program.path.slice(program.path.lastIndexOf('/') + 1);
        facts.path = program.path;
        facts.readPath = program.readPath;
        delete facts.pathVouched;
        vouch(program.path, program.id);
        programArgv = program.argv;
      }
    }

    const family = interpreterOf(facts.name!.toLowerCase());
    if (family) {
      const args = programArgv ?? cmdline();
      const found = scriptArgument(family, args);
      if ('script' in found) {
        const where = this.resolve(dir, found.script);
        if (where) facts.script = { name: where.path.slice(where.path.lastIndexOf('/') + 1), path: where.path, readPath: where.access };
      }
    }
    return facts;
  }

  /** A loader by its name, or any executable outside the OS's folders whose ELF headers are a loader's (a renamed copy, or a static PIE). */
  private loaderKind(name: string, path: string, pathVouched: boolean, dir: string): 'by-name' | 'by-headers' | undefined {
    if (isLoaderName(name)) return 'by-name';
    if (pathVouched && isOsPath(path, 'linux')) return undefined;
    const head = this.head(join(dir, 'exe'));
    return head !== undefined && elfLooksLikeLoader(head) ? 'by-headers' : undefined;
  }

  private loaderProgram(
    dir: string,
    argv: readonly string[],
    loader: BigIntStats,
    byName: boolean,
    isPrivate: boolean,
  ): { path: string; readPath: string; id: { dev: bigint; ino: bigint } | undefined; argv: readonly string[] } | undefined {
    const index = loaderProgramIndex(argv);
    const mapped = this.mappedExecutables(dir).filter((m) => !(m.dev === loader.dev && m.ino === loader.ino));
    const foreign = () => this.foreignCode(mapped, isPrivate);
    if (index !== undefined) {
      const named = this.resolve(dir, argv[index]!);
      const id = named ? this.stat(named.access) : undefined;
      const match = id ? mapped.find((m) => m.dev === id.dev && m.ino === id.ino) : undefined;
      if (match) return { path: match.path, readPath: join(dir, 'map_files', match.range), id: match, argv: argv.slice(index) };
      // Named but not mapped: not yet (the loader has only just started), or a command line that lies. What is mapped outranks it.
      const other = foreign();
      if (other) return { path: other.path, readPath: join(dir, 'map_files', other.range), id: other, argv: [] };
      // The loader's own name is needed to believe a command line alone: a static PIE's first argument is its input, not its program.
      if (byName && named && id) return { path: named.path, readPath: named.access, id, argv: argv.slice(index) };
      return undefined;
    }
    const other = foreign();
    return other ? { path: other.path, readPath: join(dir, 'map_files', other.range), id: other, argv: [] } : undefined;
  }

  /** The first mapped executable file that is not one of the OS's own where it belongs (the loader already left out). */
  private foreignCode(mapped: readonly Mapped[], isPrivate: boolean): Mapped | undefined {
    return mapped.find((m) => {
      if (!isOsPath(m.path, 'linux')) return true;
      if (!isPrivate) return false;
      // An OS path in another namespace proves nothing unless the file there is the one here.
      const here = this.stat(m.path);
      return here === undefined || here.dev !== m.dev || here.ino !== m.ino;
    });
  }

  /** Executable file mappings of the process, one per file, in address order. */
  private mappedExecutables(dir: string): Mapped[] {
    const text = this.read(join(dir, 'maps'), MAX_MAPS);
    if (text === undefined) return [];
    const seen = new Set<string>();
    const out: Mapped[] = [];
    for (const line of text.split('\n')) {
      // start-end perms offset major:minor inode path
      const m = /^([0-9a-f]+-[0-9a-f]+) (\S{4}) [0-9a-f]+ ([0-9a-f]+):([0-9a-f]+) (\d+) +(\/.*)$/.exec(line);
      if (!m || m[2]![2] !== 'x' || m[5] === '0') continue;
      const path = m[6]!.replace(/ \(deleted\)$/, '');
      const byFile = this.stat(join(dir, 'map_files', m[1]!));
      const dev = byFile?.dev ?? makedev(parseInt(m[3]!, 16), parseInt(m[4]!, 16));
      const ino = byFile?.ino ?? BigInt(m[5]!);
      const key = `${dev}:${ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ range: m[1]!, path, dev, ino });
      if (out.length >= 512) break;
    }
    return out;
  }

  /**
   * A path from the process's command line: as the process sees it (for
   * rules and events: lexically resolved against its cwd and root) and where
   * the agent can reach that very file (through /proc/PID/cwd or root).
   */
  private resolve(dir: string, arg: string): { path: string; access: string } | undefined {
    if (arg === '' || arg.includes('\0')) return undefined;
    const root = this.link(join(dir, 'root'));
    if (root === undefined) return undefined;
    if (arg.startsWith('/')) {
      const inside = posix.normalize(arg);
      return { path: root === '/' ? inside : posix.join(root, inside), access: join(dir, 'root', inside) };
    }
    const cwd = this.link(join(dir, 'cwd'));
    if (cwd === undefined) return undefined;
    return { path: posix.resolve(cwd.replace(/ \(deleted\)$/, ''), arg), access: join(dir, 'cwd', arg) };
  }

  private cmdline(dir: string): string[] {
    const text = this.read(join(dir, 'cmdline'), MAX_CMDLINE);
    if (!text) return [];
    const argv = text.split('\0');
    if (argv[argv.length - 1] === '') argv.pop();
    return argv;
  }

  private head(path: string): Buffer | undefined {
    let fd: number | undefined;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
      const buffer = Buffer.alloc(ELF_HEAD);
      return buffer.subarray(0, readSync(fd, buffer, 0, ELF_HEAD, 0));
    } catch {
      return undefined;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** A /proc text file, at most `max` bytes (its size is 0 to stat, so it is read until the end or the cap). */
  private read(path: string, max: number): string | undefined {
    try {
      return readProcText(path, 'utf8', max);
    } catch {
      return undefined;
    }
  }

  private stat(path: string): BigIntStats | undefined {
    try {
      return statSync(path, { bigint: true });
    } catch {
      return undefined;
    }
  }

  private link(path: string): string | undefined {
    try {
      return readlinkSync(path);
    } catch {
      return undefined;
    }
  }
}

/** glibc's makedev: the st_dev that `stat` gives for a device shown as major:minor in /proc/PID/maps. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}
