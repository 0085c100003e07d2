import { closeSync, constants, openSync, readSync } from 'node:fs';

/** Most /proc text files (stat, status, loadavg, a command line) fit in one read of this. */
const SCRATCH_BYTES = 16 * 1024;
let scratch: Buffer | undefined;

/**
 * A /proc text file, whole or up to `maxBytes`, read through one buffer kept
 * for the purpose. procfs gives its files size 0, so `fs.readFileSync` reads
 * each into fresh 64 KiB buffers until a read returns nothing: two per file.
 * At the agent's start, reading every process that way made some 100 MB of
 * short-lived C allocations, and the C heap they came from stayed 7 MB
 * larger for good; each new process cost 256 KiB more (issue 14, `npm run
 * bench -- agent-idle`). Only a file longer than the buffer (a large
 * process's `maps`) is copied out, piece by piece.
 *
 * Synchronous, so nothing else can use the buffer meanwhile. Throws as
 * `readFileSync` does when the file cannot be opened or read.
 */
export function readProcText(path: string, encoding: 'latin1' | 'utf8', maxBytes = Number.MAX_SAFE_INTEGER): string {
  const buffer = (scratch ??= Buffer.allocUnsafeSlow(SCRATCH_BYTES));
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    let pieces: Buffer[] | undefined;
    let used = 0;
    let total = 0;
    while (total < maxBytes) {
      if (used === buffer.length) {
        (pieces ??= []).push(Buffer.from(buffer));
        used = 0;
      }
      const n = readSync(fd, buffer, used, Math.min(buffer.length - used, maxBytes - total), null);
      if (n === 0) break;
      used += n;
      total += n;
    }
    if (!pieces) return buffer.toString(encoding, 0, used);
    pieces.push(buffer.subarray(0, used));
    return Buffer.concat(pieces, total).toString(encoding);
  } finally {
    closeSync(fd);
  }
}
