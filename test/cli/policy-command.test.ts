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

  it('fails a policy with several mistakes with one coded error per mistake, each with its JSON path, all in one run', () => {
    const broken = preset('basildon-primary') as unknown as Record<string, Record<string, Record<string, unknown>>>;
    broken.usbStorage!.default!.mode = 'allow-everything';
    broken.loginLimit!.default!.clause = 'no-such-clause';
    (broken as Record<string, unknown>).colour = 'blue';
    const file = join(tempDir('policy'), 'broken.json');
    writeFileSync(file, JSON.stringify(broken));

    const result = runCli(['policy', 'validate', file]);

    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n').slice(1);
    // The unknown clause is reported beside the schema's mistakes, not hidden behind them until those are fixed.
    expect(lines).toEqual([
      expect.stringMatching(/^INV_ERR_SCHEMA_VALUE at \$\.usbStorage\.default\.mode: /),
      expect.stringMatching(/^INV_ERR_SCHEMA_UNKNOWN_FIELD at \$\.colour: /),
      expect.stringMatching(/^INV_ERR_POLICY_UNKNOWN_CLAUSE at \$\.loginLimit\.default\.clause: /),
    ]);
    expect(result.stderr.split('\n')[0]).toMatch(/3 problems/);
  });

  it('finds reference mistakes in a document whose shape is wrong in other places, and no false ones', () => {
    const broken = preset('basildon-primary') as unknown as Record<string, unknown>;
    broken.roles = { default: 'pupil', definitions: 'everyone' };
    (broken.usbStorage as Record<string, Record<string, unknown>>).roles = { governor: { mode: 'block' } };
    (broken.logoff as Record<string, Record<string, unknown>>).default!.clause = 'no-such-clause';
    const result = runCli(['policy', 'validate', '-'], { input: JSON.stringify(broken) });
    expect(result.status).toBe(1);
    const codes = result.stderr.trim().split('\n').slice(1);
    expect(codes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^INV_ERR_SCHEMA_TYPE at \$\.roles\.definitions: /),
        expect.stringMatching(/^INV_ERR_POLICY_UNKNOWN_CLAUSE at \$\.logoff\.default\.clause: /),
      ]),
    );
    // With no readable list of roles, no role is called unknown: that would be a guess.
    expect(result.stderr).not.toContain('INV_ERR_POLICY_UNKNOWN_ROLE');
    expect(result.stderr).not.toMatch(/\n\s+at /);
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

describe('invigilator policy validate --against: was the revision raised?', () => {
  const write = (name: string, policy: unknown) => {
    const file = join(tempDir('against'), name);
    writeFileSync(file, JSON.stringify(policy, null, 2));
    return file;
  };
  const changed = (revision: number) => {
    const policy = preset('basildon-primary')!;
    policy.logoff.default.endOfDay = { ...policy.logoff.default.endOfDay, time: '17:30' } as typeof policy.logoff.default.endOfDay;
    return { ...policy, revision };
  };

  it('warns when the policy changed but its revision did not: agents holding that revision would never get it', () => {
    const result = runCli(['policy', 'validate', write('new.json', changed(1)), '--against', 'basildon-primary']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/valid policy basildon-primary revision 1/);
    expect(result.stderr).toMatch(/^warning INV_ERR_POLICY_REVISION_STALE: .*revision 1.*basildon-primary.*revision 1.*logoff/m);
  });

  it('warns when the revision went down', () => {
    const old = write('old.json', changed(5));
    const result = runCli(['policy', 'validate', write('new.json', changed(4)), '--against', old]);
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/^warning INV_ERR_POLICY_REVISION_STALE: .*revision 4.*old\.json.*revision 5/m);
  });

  it('is quiet when the revision was raised, or nothing changed', () => {
    const raised = runCli(['policy', 'validate', write('new.json', changed(2)), '--against', 'basildon-primary']);
    expect(raised).toMatchObject({ status: 0, stderr: '' });
    expect(raised.stdout).toMatch(/revision 2 \(basildon-primary has revision 1\)/);
    const same = runCli(['policy', 'validate', '-', '--against', 'basildon-primary'], { input: JSON.stringify(preset('basildon-primary')) });
    expect(same).toMatchObject({ status: 0, stderr: '' });
    expect(same.stdout).toMatch(/the same as basildon-primary/);
  });

  it('says nothing about revisions of a different policy', () => {
    const result = runCli(['policy', 'validate', write('new.json', changed(1)), '--against', 'carrington-infant']);
    expect(result).toMatchObject({ status: 0, stderr: '' });
    expect(result.stdout).toMatch(/carrington-infant is another policy/);
  });

  it('refuses a policy to compare with that is missing or not valid, with a code', () => {
    const missing = runCli(['policy', 'validate', write('new.json', changed(2)), '--against', '/nonexistent/old.json']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/INV_ERR_FILE_UNREADABLE at \$: \/nonexistent\/old\.json: ENOENT/);
    expect(runCli(['policy', 'validate', write('new.json', changed(2)), '--against', 'hogwarts']).stderr).toContain('INV_ERR_POLICY_NOT_FOUND');
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
