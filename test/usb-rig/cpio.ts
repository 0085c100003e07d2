import { closeSync, fstatSync, openSync, readSync, renameSync, writeSync } from 'node:fs';

/**
 * A writer for the "newc" cpio format, the one the Linux initramfs unpacker
 * reads. Written here rather than piped through cpio(1) so the archive needs
 * no root (device nodes and root-owned files are just header fields), and so
 * the same inputs always give the same bytes (mtime 0, fixed inode order).
 */
export class CpioWriter {
  private readonly fd: number;
  private readonly tmp: string;
  private inode = 1;
  private offset = 0;
  private readonly seen = new Set<string>();

  constructor(private readonly target: string) {
    // Written beside the target and renamed at the end: a concurrent or
    // interrupted build never leaves a half archive under the final name.
    this.tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
    this.fd = openSync(this.tmp, 'w');
  }

  /** Parent directories must precede their entries; this adds any missing ones. */
  dir(path: string, mode = 0o755): void {
    const parts = normalise(path)
      .split('/')
      .filter((part) => part !== '');
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (this.seen.has(p)) continue;
      this.seen.add(p);
      this.entry(p, 0o040000 | mode, Buffer.alloc(0));
    }
  }

  file(path: string, contents: Buffer | string, mode = 0o644): void {
    const p = this.claim(path);
    this.entry(p, 0o100000 | mode, typeof contents === 'string' ? Buffer.from(contents) : contents);
  }

  /** Streams a host file in, so a 100 MB binary is never held in memory whole. */
  hostFile(path: string, hostPath: string, mode?: number): void {
    const p = this.claim(path);
    const src = openSync(hostPath, 'r');
    try {
      const st = fstatSync(src);
      this.header(p, 0o100000 | ((mode ?? st.mode) & 0o7777), st.size);
      const chunk = Buffer.alloc(1 << 20);
      let done = 0;
      while (done < st.size) {
        const n = readSync(src, chunk, 0, chunk.length, done);
        if (n <= 0) throw new Error(`${hostPath} shrank while it was being archived`);
        this.write(chunk.subarray(0, n));
        done += n;
      }
      this.pad();
    } finally {
      closeSync(src);
    }
  }

  symlink(path: string, target: string): void {
    const p = this.claim(path);
    this.entry(p, 0o120777, Buffer.from(target));
  }

  charDevice(path: string, major: number, minor: number, mode = 0o600): void {
    const p = this.claim(path);
    this.header(p, 0o020000 | mode, 0, major, minor);
    this.pad();
  }

  has(path: string): boolean {
    return this.seen.has(normalise(path));
  }

  finish(): void {
    this.header('TRAILER!!!', 0, 0);
    this.pad();
    closeSync(this.fd);
    renameSync(this.tmp, this.target);
  }

  private claim(path: string): string {
    const p = normalise(path);
    const slash = p.lastIndexOf('/');
    if (slash > 0) this.dir(p.slice(0, slash));
    this.seen.add(p);
    return p;
  }

  private entry(name: string, mode: number, data: Buffer): void {
    this.header(name, mode, data.length);
    this.write(data);
    this.pad();
  }

  private header(name: string, mode: number, size: number, rdevMajor = 0, rdevMinor = 0): void {
    const nameBytes = Buffer.from(`${name}\0`);
    const fields = [this.inode++, mode, 0, 0, mode & 0o040000 ? 2 : 1, 0, size, 0, 0, rdevMajor, rdevMinor, nameBytes.length, 0];
    this.write(Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`));
    this.write(nameBytes);
    this.pad();
  }

  private pad(): void {
    const extra = (4 - (this.offset % 4)) % 4;
    if (extra) this.write(Buffer.alloc(extra));
  }

  private write(data: Buffer): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done);
    this.offset += data.length;
  }
}

/** Archive names are relative ("usr/bin/node"), as the kernel expects. */
function normalise(path: string): string {
  return path.replace(/^\/+/, '').replace(/\/+$/, '');
}
