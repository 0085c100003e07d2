import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { JsonStateFile, writeAtomically } from '../../../agent/core/state-file';
import { tempDir } from '../../support/cli';

const schema = z.array(z.number());

describe('a JSON state file', () => {
  it('keeps the last of many saves made at once, whole, with no temporary file left', async () => {
    const dir = tempDir('state');
    const file = new JsonStateFile(join(dir, 'state.json'), schema, () => []);
    await Promise.all(Array.from({ length: 50 }, (_, i) => file.save(Array.from({ length: i + 1 }, (_, j) => j))));
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'))).toHaveLength(50);
    expect(readdirSync(dir)).toEqual(['state.json']);
    expect(await file.load()).toHaveLength(50);
  });

  it('starts from empty, rather than failing, when the file is damaged or hostile', async () => {
    const dir = tempDir('state');
    const path = join(dir, 'state.json');
    const file = new JsonStateFile(path, schema, () => []);
    for (const text of ['[1, 2', '{"__proto__": {"x": 1}}', '["a"]', '\u0000']) {
      writeFileSync(path, text);
      expect(await file.load()).toEqual([]);
    }
  });
});

describe('writeAtomically', () => {
  it('keeps the last of many writes to one path, in the order they were asked for', async () => {
    const dir = tempDir('atomic');
    const path = join(dir, 'policy.json');
    // Large first, small last: unordered, the small one would land first and the large one win.
    const writes = Array.from({ length: 40 }, (_, i) => writeAtomically(path, String(i).repeat((40 - i) * 10_000)));
    await Promise.all(writes);
    expect(readFileSync(path, 'utf8')).toBe('39'.repeat(10_000));
    expect(readdirSync(dir)).toEqual(['policy.json']);
  });

  it('makes the file 0600, or the mode asked for, whatever the umask', async () => {
    const dir = tempDir('atomic');
    const before = process.umask(0o000);
    try {
      await writeAtomically(join(dir, 'identity.json'), '{}');
      await writeAtomically(join(dir, 'shared.txt'), 'x', { mode: 0o644 });
    } finally {
      process.umask(before);
    }
    expect(statSync(join(dir, 'identity.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'shared.txt')).mode & 0o777).toBe(0o644);
  });

  it('leaves the old file and no temporary file behind when the rename fails', async () => {
    const dir = tempDir('atomic');
    // A folder where the file should be: the write succeeds, the rename over it cannot.
    mkdirSync(join(dir, 'state.json'));
    writeFileSync(join(dir, 'state.json', 'inside'), 'old');
    await expect(writeAtomically(join(dir, 'state.json'), 'new')).rejects.toMatchObject({ code: expect.stringMatching(/^E/) });
    expect(readdirSync(dir)).toEqual(['state.json']);
    expect(readFileSync(join(dir, 'state.json', 'inside'), 'utf8')).toBe('old');
    // And the next write to that path is not held up by the failed one.
    await expect(writeAtomically(join(dir, 'other.json'), 'ok')).resolves.toBeUndefined();
  });
});
