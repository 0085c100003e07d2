import { execFileSync } from 'node:child_process';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { CpioWriter } from './cpio';

/**
 * The guest is laid out like Debian 12's merged /usr: /bin, /sbin, /lib and
 * /lib64 are symlinks into /usr. Host paths are copied under their real
 * location, so "/lib/x86_64-linux-gnu/libc.so.6" and the loader's
 * "/lib64/ld-linux-x86-64.so.2" resolve in the guest exactly as on the host.
 */
export const MERGED_USR: Record<string, string> = { bin: 'usr/bin', sbin: 'usr/sbin', lib: 'usr/lib', lib64: 'usr/lib64' };

/** Where a host path lives once its directories' symlinks are resolved. */
function canonicalDir(path: string): string {
  return join(realpathSync(dirname(path)), basename(path));
}

/** Shared libraries an ELF file needs, as the host's loader resolves them (ldd). */
export function sharedLibraries(path: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    // ldd exits non-zero for static binaries ("not a dynamic executable").
    return [];
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    if (/not found/.test(line)) throw new Error(`${path}: a library is missing on the host: ${line.trim()}`);
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

function isElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(4);
    return readSync(fd, head, 0, 4, 0) === 4 && head.toString('latin1') === '\x7fELF';
  } finally {
    closeSync(fd);
  }
}

/** Copies host files into an archive, following symlinks and pulling in the libraries each ELF file needs. */
export class HostFiles {
  private readonly done = new Set<string>();

  constructor(private readonly cpio: CpioWriter) {}

  /**
   * Copies a host file to its canonical path in the guest, keeping symlinks
   * as symlinks (udevadm answers to its name as systemd-udevd) and pulling in
   * the libraries of every ELF file. With `guestPath` the file's contents go
   * there instead (symlinks followed).
   */
  add(hostPath: string, guestPath?: string): void {
    if (guestPath !== undefined) {
      const real = realpathSync(hostPath);
      this.cpio.hostFile(guestPath, real);
      this.libraries(real);
      return;
    }
    const canonical = canonicalDir(hostPath);
    if (this.done.has(canonical)) return;
    this.done.add(canonical);
    const st = lstatSync(canonical);
    if (st.isSymbolicLink()) {
      const target = readlinkSync(canonical);
      this.cpio.symlink(canonical, target);
      this.add(target.startsWith('/') ? target : join(dirname(canonical), target));
      return;
    }
    if (!st.isFile()) throw new Error(`${hostPath} is not a file`);
    this.cpio.hostFile(canonical, canonical);
    this.libraries(canonical);
  }

  private libraries(path: string): void {
    if (isElf(path)) for (const lib of sharedLibraries(path)) this.add(lib);
  }

  /** Copies a whole host directory tree, skipping paths the filter rejects. */
  addTree(hostDir: string, guestDir: string, keep: (relative: string) => boolean = () => true): void {
    const walk = (rel: string): void => {
      const host = join(hostDir, rel);
      const st = lstatSync(host);
      if (st.isDirectory()) {
        for (const entry of readdirSync(host).sort()) {
          const child = rel ? `${rel}/${entry}` : entry;
          if (keep(child)) walk(child);
        }
      } else if (st.isSymbolicLink()) {
        this.cpio.symlink(join(guestDir, rel), readlinkSync(host));
      } else if (st.isFile()) {
        this.cpio.hostFile(join(guestDir, rel), host);
        if (rel.endsWith('.node')) this.libraries(host);
      }
    };
    walk('');
  }
}
