import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { preset } from '../../shared/policy/presets';
import { CLI, ROOT, runCli, tempDir } from '../support/cli';

describe('invigilator policy', () => {
  it.each(['basildon-primary', 'carrington-infant'])('show %s | validate /dev/stdin succeeds through a real shell pipe', (name) => {
    const pipe = spawnSync('sh', ['-c', `node "${CLI}" policy show ${name} | node "${CLI}" policy validate /dev/stdin`], { cwd: ROOT, encoding: 'utf8' });
    expect(pipe.stderr).toBe('');
    expect(pipe.stdout).toMatch(new RegExp(`valid policy ${name} revision 1`));
    expect(pipe.status).toBe(0);
  });

  it('prints exactly the preset, as JSON', () => {
    const shown = runCli(['policy', 'show', 'carrington-infant']);
    expect(JSON.parse(shown.stdout)).toEqual(preset('carrington-infant'));
  });

  it('fails a policy with several mistakes with one coded error per mistake, each with its JSON path', () => {
    const broken = preset('basildon-primary') as unknown as Record<string, Record<string, Record<string, unknown>>>;
    broken.usbStorage!.default!.mode = 'allow-everything';
    broken.loginLimit!.default!.clause = 'no-such-clause';
    (broken as Record<string, unknown>).colour = 'blue';
    const file = join(tempDir('policy'), 'broken.json');
    writeFileSync(file, JSON.stringify(broken));

    const result = runCli(['policy', 'validate', file]);

    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n').slice(1);
    expect(lines).toEqual([
      expect.stringMatching(/^INV_ERR_SCHEMA_VALUE at \$\.usbStorage\.default\.mode: /),
      expect.stringMatching(/^INV_ERR_SCHEMA_UNKNOWN_FIELD at \$\.colour: /),
    ]);
  });

  it('reports cross-reference mistakes once the shape is right', () => {
    const broken = preset('basildon-primary')!;
    broken.loginLimit.default.clause = 'no-such-clause';
    const result = runCli(['policy', 'validate', '-'], { input: JSON.stringify(broken) });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/INV_ERR_POLICY_UNKNOWN_CLAUSE at \$\.loginLimit\.default\.clause/);
  });

  it.each([
    ['not JSON at all', '{"v":1,', 'INV_ERR_INVALID_JSON'],
    ['an array', '[]', 'INV_ERR_SCHEMA_TYPE'],
    ['deeply nested', '['.repeat(5000) + ']'.repeat(5000), 'INV_ERR_TOO_DEEP'],
  ])('refuses %s with a code and no stack trace', (_name, input, code) => {
    const result = runCli(['policy', 'validate', '-'], { input });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(code);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('names an unknown preset and a missing file with codes', () => {
    expect(runCli(['policy', 'show', 'hogwarts'])).toMatchObject({ status: 1, stderr: expect.stringContaining('INV_ERR_POLICY_NOT_FOUND') });
    expect(runCli(['policy', 'validate', '/nonexistent/policy.json'])).toMatchObject({ status: 1, stderr: expect.stringContaining('INV_ERR_FILE_UNREADABLE') });
  });
});

describe('help and usage', () => {
  it.each([[['--help']], [['agent', '--help']], [['collector', '--help']], [['policy', '--help']], [['start', '--help']]])(
    '%j prints usage and exits 0',
    (args) => {
      const result = runCli(args);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(/Usage/);
    },
  );

  it('refuses an unknown command and an unknown option with INV_ERR_USAGE and exit 2', () => {
    expect(runCli(['format-disk'])).toMatchObject({ status: 2, stderr: expect.stringContaining('INV_ERR_USAGE') });
    const badOption = runCli(['collector', '--colour', 'blue']);
    expect(badOption).toMatchObject({ status: 2, stderr: expect.stringContaining('INV_ERR_USAGE') });
    expect(badOption.stderr).not.toMatch(/\n\s+at /);
  });
});
