import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readProcText } from '../../../../../agent/software/programs/linux/proc-text';
import { tempDir } from '../../../../support/cli';

describe('reading a /proc text file through the one buffer', () => {
  it('reads a real /proc file whole, as readFileSync does', () => {
    const status = readProcText(`/proc/${process.pid}/status`, 'latin1');
    expect(status).toMatch(new RegExp(`^Name:\\t[^\\n]+\\n[\\s\\S]*\\nPid:\\t${process.pid}\\n`));
    expect(status.endsWith('\n')).toBe(true);
    // /proc/self/maps of this process runs past one buffer's worth.
    const maps = readProcText('/proc/self/maps', 'utf8');
    expect(maps.length).toBeGreaterThan(16 * 1024);
    expect(
      maps
        .split('\n')
        .filter((l) => l !== '')
        .every((l) => /^[0-9a-f]+-[0-9a-f]+ /.test(l)),
    ).toBe(true);
  });

  it('keeps every byte of a file longer than the buffer, in order, and stops at the cap', () => {
    const dir = tempDir('proc-text');
    const bytes = Buffer.alloc(40_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
    writeFileSync(join(dir, 'long'), bytes);
    expect(readProcText(join(dir, 'long'), 'latin1')).toBe(readFileSync(join(dir, 'long'), 'latin1'));
    expect(readProcText(join(dir, 'long'), 'latin1', 20_000)).toBe(bytes.subarray(0, 20_000).toString('latin1'));
    expect(readProcText(join(dir, 'long'), 'latin1', 5)).toBe(bytes.subarray(0, 5).toString('latin1'));
  });

  it('gives a comm that is not UTF-8 byte for byte in latin1, and a short read after a long one nothing of the long one', () => {
    const dir = tempDir('proc-text');
    writeFileSync(join(dir, 'stat'), Buffer.from([0x31, 0x20, 0x28, 0xff, 0xfe, 0x29, 0x0a]));
    writeFileSync(join(dir, 'long'), 'x'.repeat(30_000));
    readProcText(join(dir, 'long'), 'latin1');
    expect(readProcText(join(dir, 'stat'), 'latin1')).toBe('1 (\u00ff\u00fe)\n');
    writeFileSync(join(dir, 'empty'), '');
    expect(readProcText(join(dir, 'empty'), 'utf8')).toBe('');
  });

  it('throws, as readFileSync does, for a file that is not there', () => {
    expect(() => readProcText('/proc/999999999/stat', 'latin1')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
