import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { JsonStateFile } from '../../agent/json-state-file';
import { tempDir } from '../support/cli';

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
