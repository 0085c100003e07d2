import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { codeSpans, sections } from './markdown';

/**
 * The docs point at the code and tests that do and prove what they say. A
 * file renamed or a test retitled must not leave them pointing at nothing:
 * every path they name exists, and every test the threat model quotes is
 * still a test of that name in that file.
 */
const root = join(__dirname, '../..');
const docs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md'));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** Named in the docs on purpose though not in this repository: the design brief's files, beside the project. */
const ELSEWHERE = new Set(['agent/main.ts', 'shared/design.md', 'shared/policies/']);
const TOP = /^(agent|collector|shared|node-common|cli|test|tray-ui|installer|bench|eslint-rules)\/[^\s<>]*$/;

/** Whether a path exists, `*` in its last part standing for any characters. */
function exists(path: string): boolean {
  if (!path.includes('*')) return existsSync(join(root, path));
  const folder = dirname(path);
  const pattern = new RegExp(
    `^${basename(path)
      .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')}$`,
  );
  return existsSync(join(root, folder)) && readdirSync(join(root, folder)).some((f) => pattern.test(f));
}

describe.each(docs)('docs/%s', (doc) => {
  const paths = [...new Set(codeSpans(read(join('docs', doc))).filter((c) => TOP.test(c)))];
  it('names only files and folders that exist', () => {
    expect(paths.filter((p) => !ELSEWHERE.has(p) && !exists(p))).toEqual([]);
  });
});

describe('the threat model in docs/architecture.md', () => {
  const section = sections(read('docs/architecture.md')).filter((s) => s.title === 'Threat model' || s.parents.includes('Threat model'));
  const text = section.map((s) => s.body).join('\n');
  const testFiles = (function walk(dir: string): string[] {
    return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
    );
  })('test');
  /** A test file as the text names it: a whole path, or a name only one test file has. */
  const resolve = (named: string) => (named.startsWith('test/') ? [named] : testFiles.filter((f) => basename(f) === named));
  /** Each test file named, with the test titles quoted right after it (`file`, "title", "title"). */
  const cited = [...text.matchAll(/`([^`]*\.test\.ts)`((?:,\s+"[^"]+")*)/g)].map((m) => ({
    named: m[1]!,
    titles: [...m[2]!.matchAll(/"([^"]+)"/g)].map((t) => t[1]!.replace(/\s+/g, ' ')),
  }));

  it('cites a test for every attacker', () => {
    const attackers = section.filter((s) => s.level === 3);
    expect(attackers.length).toBe(5);
    for (const a of attackers) expect({ attacker: a.title, cites: /`[^`]*\.test\.ts`/.test(a.body) }).toEqual({ attacker: a.title, cites: true });
  });

  it('cites test files that exist, each named unambiguously', () => {
    expect(cited.length).toBeGreaterThan(10);
    expect(cited.filter((c) => resolve(c.named).length !== 1).map((c) => c.named)).toEqual([]);
  });

  it('quotes test titles that are still in the files it names', () => {
    const quoted = cited.flatMap((c) => c.titles.map((title) => ({ file: resolve(c.named)[0]!, title })));
    expect(quoted.length).toBeGreaterThan(10);
    const normal = (s: string) => s.replace(/[’‘]/g, "'").replace(/\s+/g, ' ');
    expect(quoted.filter((q) => !normal(read(q.file)).includes(q.title))).toEqual([]);
  });
});
