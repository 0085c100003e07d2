import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, tempDir } from '../support/cli';
import { type TestCollector, startTestCollector } from '../support/harness';

/** Runs the link-stop process; resolves with how long it lived after saying `stopped`, or `undefined` if it outlived `boundMs`. */
function lingerAfterStop(args: string[], boundMs: number): Promise<{ lingerMs: number | undefined; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'test/support/link-stop-agent.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let stoppedAt: number | undefined;
    let bound: NodeJS.Timeout | undefined;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stoppedAt === undefined && stdout.includes('stopped\n')) {
        stoppedAt = Date.now();
        bound = setTimeout(() => {
          child.kill('SIGKILL');
          resolve({ lingerMs: undefined, code: null, stderr });
        }, boundMs);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(bound);
      resolve({ lingerMs: stoppedAt === undefined ? undefined : Date.now() - stoppedAt, code, stderr });
    });
  });
}

describe('stopping the link', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startTestCollector();
  });
  afterAll(() => c.close());

  it('leaves nothing running when stopped while it is still starting to connect', async () => {
    // stop() right after start(): the link is reading its identity file. It once went on to open a connection
    // after stop() had returned, which the collector's pings then kept alive for good.
    for (let round = 0; round < 3; round++) {
      const run = await lingerAfterStop([tempDir('link-stop'), c.agentUrl, await c.enrollmentToken()], 5_000);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.lingerMs).toBeDefined();
    }
  });
});
