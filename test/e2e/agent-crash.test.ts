import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, eventually, tempDir } from '../support/cli';
import { allEvents, checkExactlyOnce } from '../support/delivery-checks';
import { type TestCollector, startTestCollector } from '../support/harness';

const BURST = 10_000;
const KILLS = 20;

/** Runs the burst agent until it has confirmed `stopAfter` more events (then SIGKILL) or finished. */
function runAgent(args: string[], confirmed: Set<number>, stopAfter: number | undefined): Promise<'killed' | 'done'> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'test/support/burst-agent.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seenHere = 0;
    let buffer = '';
    let stderr = '';
    let finished = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        if (line === 'done') finished = true;
        else if (line.startsWith('c ')) {
          confirmed.add(Number(line.slice(2)));
          // Kill at a random moment shortly after the chosen point, so the kill lands mid-write as often as between writes.
          if (stopAfter !== undefined && ++seenHere === stopAfter) setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 5));
        }
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0 && finished) resolve('done');
      else reject(new Error(`burst agent exited ${code ?? signal}: ${stderr}`));
    });
  });
}

describe('the agent killed with SIGKILL during a burst', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startTestCollector();
  });
  afterAll(() => c.close());

  it(`loses nothing and stores nothing twice across ${KILLS} kills and restarts in ${BURST} events`, async () => {
    const dataDir = tempDir('burst-agent');
    const token = await c.enrollmentToken();
    const confirmed = new Set<number>();
    let kills = 0;
    for (let round = 0; round <= KILLS; round++) {
      const from = confirmed.size === 0 ? 1 : Math.max(...confirmed) + 1;
      if (from > BURST) break;
      const stopAfter = round < KILLS ? 1 + Math.floor(Math.random() * (BURST / KILLS)) : undefined;
      const outcome = await runAgent([dataDir, c.agentUrl, token, String(from), String(BURST)], confirmed, stopAfter);
      if (outcome === 'killed') kills++;
    }
    // Whatever is still in the outbox after the last kill is sent by one more, uninterrupted, run.
    await runAgent([dataDir, c.agentUrl, token, String(BURST + 1), String(BURST)], confirmed, undefined);

    const devices = await eventually(async () => {
      const listed = await c.store.listDevices();
      return listed.length > 0 ? listed : undefined;
    });
    expect(devices.map((d) => d.lastSeq > 0)).toEqual([true]);
    const events = await allEvents(c.store, devices[0]!.id);
    const result = checkExactlyOnce(events, confirmed);

    expect(kills).toBe(KILLS);
    expect(confirmed.size).toBeGreaterThanOrEqual(BURST - KILLS * 64);
    expect(result.labels).toBeGreaterThanOrEqual(confirmed.size);
    expect(await c.store.listDevices()).toHaveLength(1);
  });
});
