import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tempDir } from '../support/cli';

/** A bad configuration is a clear error naming the field (and where it came from), never a stack trace. */
describe('configuration errors', () => {
  const noStackTrace = (text: string) => expect(text).not.toMatch(/\n\s+at /);

  it('names the field and the environment variable a bad value came from', () => {
    const result = runCli(['collector', '--db', 'sqlite::memory:'], { env: { INVIGILATOR_PORT: 'eighty' } });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/INV_ERR_CONFIG_INVALID at \$\.port: .*\(from INVIGILATOR_PORT\)/);
    noStackTrace(result.stderr);
  });

  it('names a missing required field', () => {
    const result = runCli(['collector']);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/INV_ERR_CONFIG_INVALID at \$\.db: /);
  });

  it('names the field of a mistake in a config file, and an unknown field', () => {
    const file = join(tempDir('config'), 'agent.json');
    writeFileSync(file, JSON.stringify({ collector: { url: 'ws://127.0.0.1:1/agent' }, dataDir: '/tmp/x', logLevel: 'chatty', colour: 'red' }));
    const result = runCli(['agent', '--config', file]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/INV_ERR_CONFIG_INVALID at \$\.logLevel: /);
    expect(result.stderr).toMatch(/INV_ERR_CONFIG_INVALID at \$\.colour: /);
  });

  it('says which file is unreadable or not JSON', () => {
    const dir = tempDir('config');
    writeFileSync(join(dir, 'broken.json'), '{"collector": ');
    expect(runCli(['agent', '--config', join(dir, 'broken.json')]).stderr).toMatch(/INV_ERR_INVALID_JSON at \$: .*broken\.json/);
    expect(runCli(['agent', '--config', join(dir, 'missing.json')]).stderr).toMatch(/INV_ERR_CONFIG_UNREADABLE at \$: .*missing\.json: ENOENT/);
  });

  it('refuses plain ws:// to another machine, which would send events unencrypted', () => {
    const result = runCli(['agent', '--collector', 'ws://collector.school.example/agent', '--data-dir', tempDir('agent')]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/INV_ERR_CONFIG_INVALID: .*use wss:\/\//);
    noStackTrace(result.stderr);
  });

  it('bounds how many transactions may decide one burst of sign-ins', () => {
    const dir = tempDir('config');
    for (const claimTransactions of [0, 9, 2.5]) {
      writeFileSync(join(dir, 'collector.json'), JSON.stringify({ db: 'sqlite::memory:', loginLimit: { claimTransactions } }));
      const result = runCli(['collector', '--config', join(dir, 'collector.json')]);
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/INV_ERR_CONFIG_INVALID at \$\.loginLimit\.claimTransactions: /);
    }
  });

  it('refuses a database URL it does not know', () => {
    expect(runCli(['collector', '--db', 'mysql://x']).stderr).toMatch(/INV_ERR_CONFIG_INVALID at \$\.db: /);
  });
});
