import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../support/cli';

/** A process whose stop never finishes, or finishes but leaves a timer running: `untilSignalled` must still end it. */
function serviceThat(stop: 'hangs' | 'leaves-a-timer') {
  const body = stop === 'hangs' ? `() => new Promise(() => {})` : `async () => { setInterval(() => {}, 1000); }`;
  const script = `
    const { untilSignalled } = require(${JSON.stringify(join(ROOT, 'dist/cli/lifecycle.js'))});
    setInterval(() => {}, 1000);
    untilSignalled(${body}, { exitWithinMs: 300 }).then((code) => { process.exitCode = code; });
    process.stdout.write('ready\\n');`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) => {
    let signalledAt = 0;
    void ready.then(() => {
      signalledAt = Date.now();
      child.kill('SIGTERM');
    });
    child.once('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - signalledAt }));
  });
  const bound = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return exited.finally(() => clearTimeout(bound)).then((exit) => ({ ...exit, stderr }));
}

describe('a service stopped by a signal', () => {
  it('is ended, with exit 1 and a line naming what still runs, when its stop does not finish in time', async () => {
    const run = await serviceThat('hangs');
    expect({ code: run.code, signal: run.signal }).toEqual({ code: 1, signal: null });
    expect(run.stderr).toMatch(/INV_ERR_INTERNAL: did not stop within 300 ms.*Timeout/);
  });

  it('is ended with its own exit code when something is left holding it after a finished stop', async () => {
    const run = await serviceThat('leaves-a-timer');
    expect({ code: run.code, signal: run.signal }).toEqual({ code: 0, signal: null });
    expect(run.stderr).toMatch(/still held by .*Timeout/);
  });
});
