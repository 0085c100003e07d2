import { join } from 'node:path';
import { DEFAULT_OUTBOX_OPTIONS, Outbox } from '../../agent/outbox/outbox';
import { eventually, startCli, tempDir } from '../support/cli';
import { allEvents, checkExactlyOnce } from '../support/delivery-checks';
import { type TestCollector, freePort, startTestCollector } from '../support/harness';

const UNSENT = 100_000;
/** What a service manager waits for before it kills (systemd's default is longer; ours must not depend on that). */
const STOP_BOUND_MS = 5_000;

/** An outbox holding `count` unsent events labelled k-1 … k-count, as an agent that was offline for a long time has. */
async function filledDataDir(count: number): Promise<string> {
  const dataDir = tempDir('stop-agent');
  const { outbox } = await Outbox.open({ ...DEFAULT_OUTBOX_OPTIONS, dir: join(dataDir, 'outbox'), sync: false });
  for (let from = 1; from <= count; from += 1000) {
    const appends = [];
    for (let k = from; k < from + 1000 && k <= count; k++)
      appends.push(outbox.append({ type: 'command.completed', severity: 'info', time: new Date().toISOString(), data: { commandId: `k-${k}`, ok: true } }));
    await Promise.all(appends);
  }
  await outbox.close();
  return dataDir;
}

/**
 * Runs `invigilator agent` until its output has matched `when` `times` times, sends
 * SIGTERM, and says how long it took to exit and with what.
 */
async function stopAfter(dataDir: string, url: string, token: string, when: RegExp, times = 1) {
  const agent = startCli(
    [
      'agent',
      '--collector',
      url,
      '--data-dir',
      dataDir,
      '--log-level',
      'info',
      '--usb-control',
      'off',
      '--sessions-control',
      'off',
      '--software-control',
      'off',
    ],
    { INVIGILATOR_ENROLLMENT_TOKEN: token },
  );
  try {
    await eventually(() => ((agent.output().match(new RegExp(when.source, 'g')) ?? []).length >= times ? true : undefined), 1200, 25);
  } catch (e) {
    agent.child.kill('SIGKILL');
    throw new Error(`the agent never printed ${when.source}: ${agent.output().slice(-2000)} (${String(e)})`);
  }
  const signalled = Date.now();
  agent.child.kill('SIGTERM');
  const bound = setTimeout(() => agent.child.kill('SIGKILL'), 30_000);
  const exit = await agent.exited;
  clearTimeout(bound);
  return { ms: Date.now() - signalled, ...exit, output: agent.output() };
}

describe('the agent stopped with SIGTERM holding 100,000 unsent events', () => {
  let c: TestCollector;
  let dataDir: string;
  let token: string;
  beforeAll(async () => {
    c = await startTestCollector();
    token = await c.enrollmentToken();
    dataDir = await filledDataDir(UNSENT);
  });
  afterAll(() => c.close());

  it('exits cleanly within 5 s while it waits to reconnect to a collector it cannot reach', async () => {
    const nobody = `ws://127.0.0.1:${await freePort()}/agent`;
    const run = await stopAfter(dataDir, nobody, token, /collector connection closed/, 2);
    expect({ code: run.code, signal: run.signal }).toEqual({ code: 0, signal: null });
    expect(run.ms).toBeLessThan(STOP_BOUND_MS);
  });

  it('exits cleanly within 5 s when stopped just as it starts to connect', async () => {
    for (let round = 0; round < 3; round++) {
      const run = await stopAfter(dataDir, c.agentUrl, token, /agent started/);
      expect({ round, code: run.code, signal: run.signal, crash: /INV_ERR_INTERNAL|Error:/.test(run.output) }).toEqual({
        round,
        code: 0,
        signal: null,
        crash: false,
      });
      expect(run.ms).toBeLessThan(STOP_BOUND_MS);
    }
  });

  it('exits cleanly within 5 s while sending, and what it had not sent arrives later, once', async () => {
    const run = await stopAfter(dataDir, c.agentUrl, token, /connected to the collector/);
    expect({ code: run.code, signal: run.signal }).toEqual({ code: 0, signal: null });
    expect(run.ms).toBeLessThan(STOP_BOUND_MS);

    // One more run sends the rest; the collector then holds every event exactly once.
    const last = startCli(
      [
        'agent',
        '--collector',
        c.agentUrl,
        '--data-dir',
        dataDir,
        '--log-level',
        'warn',
        '--usb-control',
        'off',
        '--sessions-control',
        'off',
        '--software-control',
        'off',
      ],
      { INVIGILATOR_ENROLLMENT_TOKEN: token },
    );
    try {
      await eventually(
        async () => {
          const [device] = await c.store.listDevices();
          return device && device.lastSeq >= UNSENT ? true : undefined;
        },
        1200,
        100,
      );
    } finally {
      last.child.kill('SIGTERM');
      await last.exited;
    }
    const [device] = await c.store.listDevices();
    const events = await allEvents(c.store, device!.id);
    const { labels } = checkExactlyOnce(
      events,
      Array.from({ length: UNSENT }, (_, i) => i + 1),
    );
    expect(labels).toBe(UNSENT);
  });
});
