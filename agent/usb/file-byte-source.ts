import { type FileHandle, open } from 'node:fs/promises';
import type { ByteSource } from './volume-classifier';

/** An image file or a block device, read at offsets, never written. */
export class FileByteSource implements ByteSource {
  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<FileByteSource> {
    const handle = await open(path, 'r');
    const stat = await handle.stat();
    // fstat reports 0 for a block device; reads then simply come back short at its end.
    const size = stat.isBlockDevice() && stat.size === 0 ? Number.MAX_SAFE_INTEGER : stat.size;
    return new FileByteSource(handle, size);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await this.handle.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
