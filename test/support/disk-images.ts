import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** The Debian tools the image tests need; .ci/run installs them. */
export const IMAGE_TOOLS = ['mkfs.vfat', 'mkfs.exfat', 'mkfs.ext4', 'mkfs.ntfs', 'cryptsetup', 'sfdisk', 'mcopy', 'blkid'];
export const missingImageTools = IMAGE_TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);

const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, stdio: 'pipe' });

/** Makes real images with the real tools: a sparse file, then mkfs or cryptsetup on it. */
export class ImageMaker {
  constructor(readonly dir: string) {}

  path(name: string): string {
    return join(this.dir, name);
  }

  blank(name: string, megabytes: number): string {
    run('truncate', ['-s', `${megabytes}M`, name], this.dir);
    return this.path(name);
  }

  fat(name: string, megabytes: number, bits: 16 | 32 = 32): string {
    this.blank(name, megabytes);
    run('mkfs.vfat', ['-F', String(bits), name], this.dir);
    return this.path(name);
  }

  exfat(name: string): string {
    this.blank(name, 16);
    run('mkfs.exfat', [name], this.dir);
    return this.path(name);
  }

  ext4(name: string): string {
    this.blank(name, 16);
    run('mkfs.ext4', ['-q', '-F', name], this.dir);
    return this.path(name);
  }

  ntfs(name: string): string {
    this.blank(name, 16);
    run('mkfs.ntfs', ['-F', '-Q', '-q', name], this.dir);
    return this.path(name);
  }

  luks(name: string, type: 'luks1' | 'luks2', megabytes = 20): string {
    this.blank(name, megabytes);
    writeFileSync(this.path('key'), randomBytes(32));
    run(
      'cryptsetup',
      ['luksFormat', '--batch-mode', '--type', type, '--key-file', 'key', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', name],
      this.dir,
    );
    return this.path(name);
  }

  /** A partitioned stick: an MBR or GPT table made by sfdisk, each partition's contents copied in at its offset. */
  partitioned(name: string, table: 'dos' | 'gpt', parts: Array<{ image: string; type: string }>): string {
    const sizes = parts.map((p) => Math.ceil(readFileSync(p.image).length / (1024 * 1024)));
    this.blank(name, 2 + sizes.reduce((a, b) => a + b, 0) + 1);
    const script = [`label: ${table}`, ...parts.map((p, i) => `size=${sizes[i]}MiB, type=${p.type}`)].join('\n');
    execFileSync('sfdisk', ['-q', name], { cwd: this.dir, input: script, stdio: ['pipe', 'pipe', 'pipe'] });
    let offset = 1024 * 1024;
    const fd = openSync(this.path(name), 'r+');
    parts.forEach((p, i) => {
      const bytes = readFileSync(p.image);
      writeSync(fd, bytes, 0, bytes.length, offset);
      offset += sizes[i]! * 1024 * 1024;
    });
    closeSync(fd);
    return this.path(name);
  }

  /**
   * A BitLocker volume header, built from the offsets util-linux's libblkid
   * checks (superblocks/bitlocker.c): the boot-sector signature and, for
   * Windows 7+ and To Go, a pointer to FVE metadata that starts "-FVE-FS-".
   */
  bitlocker(name: string, kind: 'vista' | 'win7' | 'togo', { withMetadata = true } = {}): string {
    this.blank(name, 4);
    const sector = Buffer.alloc(512);
    if (kind === 'togo') {
      // To Go's boot sector is a FAT32 one: start from a real FAT32 boot sector.
      const fat = readFileSync(this.fat(`${name}.fat32`, 40));
      fat.copy(sector, 0, 0, 512);
    }
    sector[0] = 0xeb;
    sector[1] = kind === 'vista' ? 0x52 : 0x58;
    sector[2] = 0x90;
    sector.write(kind === 'togo' ? 'MSWIN4.1' : '-FVE-FS-', 3, 'latin1');
    sector[510] = 0x55;
    sector[511] = 0xaa;
    const metadataOffset = 2 * 1024 * 1024;
    if (kind === 'win7') sector.writeBigUInt64LE(BigInt(metadataOffset), 176);
    if (kind === 'togo') sector.writeBigUInt64LE(BigInt(metadataOffset), 440);
    const fd = openSync(this.path(name), 'r+');
    writeSync(fd, sector, 0, 512, 0);
    if (withMetadata && kind !== 'vista') {
      const fve = Buffer.alloc(64);
      fve.write('-FVE-FS-', 0, 'latin1');
      fve.writeUInt16LE(64, 8);
      fve.writeUInt16LE(2, 10);
      writeSync(fd, fve, 0, fve.length, metadataOffset);
    }
    closeSync(fd);
    return this.path(name);
  }

  random(name: string, megabytes: number): string {
    writeFileSync(this.path(name), randomBytes(megabytes * 1024 * 1024));
    return this.path(name);
  }

  /** Puts a file into a FAT image without mounting it. */
  copyIntoFat(image: string, fileName: string, contents: Buffer): void {
    writeFileSync(this.path(fileName), contents);
    run('mcopy', ['-i', image, this.path(fileName), `::/${fileName}`], this.dir);
  }

  /** What util-linux's blkid says the image is, for cross-checking. */
  blkidType(image: string): string {
    const out = spawnSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', image], { encoding: 'utf8' });
    return out.stdout.trim();
  }
}
