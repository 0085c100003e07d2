import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_OUTBOX_OPTIONS, Outbox, type StoredEvent } from '../../../agent/outbox/outbox';
import { TrayServer, type TrayServerOptions } from '../../../agent/tray/tray-server';
import { tempDir } from '../../support/cli';
import { silentLogger } from '../../support/harness';

const HELLO = { v: 1, type: 'tray.hello', trayVersion: '0.1.0' };
const report = (n: number, reportId?: string) => ({
  v: 1,
  type: 'tray.report',
  kind: 'broken',
  text: `printer ${n} says error 5`,
  ...(reportId ? { reportId } : {}),
});
const lines = (messages: unknown[]) => messages.map((m) => `${JSON.stringify(m)}\n`).join('');

/** Waits for `check`, bounded: 2,000 rounds of 5 ms. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!check()) throw new Error(`not reached: ${what}`);
}

/** A raw tray on the real socket: what it writes, and every line the agent sends back. */
function rawTray(path: string) {
  const received: Array<Record<string, unknown>> = [];
  const socket: Socket = connect(path);
  let buffer = '';
  let closed = false;
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    buffer += d;
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    for (const l of parts) received.push(JSON.parse(l) as Record<string, unknown>);
  });
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  return { socket, received, isClosed: () => closed, acks: () => received.filter((m) => m.type === 'tray.report.ack') };
}

/** Every event in the outbox, oldest first. */
async function recorded(outbox: Outbox): Promise<StoredEvent[]> {
  return outbox.read(0, outbox.pendingCount + 1);
}

/**
 * The agent's end of "Report a problem", on a real Unix socket, recording
 * into a real outbox on disk (fsync on): what the agent has read is the
 * agent's to keep.
 */
describe('problem reports on the tray channel', () => {
  let outbox: Outbox;
  let server: TrayServer;
  let path: string;

  const serve = async (onReport: TrayServerOptions['onReport']) => {
    server = new TrayServer({ path, logger: silentLogger(), onAnswer: async () => ({ ok: true }), ...(onReport ? { onReport } : {}) });
    await server.listen();
  };
  /** What the agent does with a report, less the rate rules: it goes into the outbox, and counts once it is there. */
  const intoOutbox: TrayServerOptions['onReport'] = async (r) => {
    await outbox.append({ type: 'problem.reported', severity: 'notice', time: new Date().toISOString(), data: { kind: r.kind, text: r.text } });
    return { outcome: 'recorded' };
  };

  beforeEach(async () => {
    const dir = tempDir('report-delivery');
    path = join(dir, 'tray.sock');
    outbox = (await Outbox.open({ ...DEFAULT_OUTBOX_OPTIONS, dir: join(dir, 'outbox') })).outbox;
  });
  afterEach(async () => {
    await server.close();
    await outbox.close();
  });

  it.each([5, 50, 500, 2000])('records all of %i reports written just before the tray closes its end, each once', async (k) => {
    // Arrange
    await serve(intoOutbox);
    const tray = rawTray(path);
    const reports = Array.from({ length: k }, (_, i) => report(i));

    // Act: hello and K reports in one go, then the tray closes its end
    tray.socket.end(lines([HELLO, ...reports]));
    await until(() => tray.isClosed(), 'the tray closed');

    // Assert: every report the agent read is in the outbox, exactly once
    await until(() => outbox.pendingCount >= k, `${k} reports in the outbox (have ${outbox.pendingCount})`);
    const texts = (await recorded(outbox)).map((e) => (e.data as { text: string }).text);
    expect(texts.sort()).toEqual(reports.map((r) => r.text).sort());
  });

  it('takes the next report while earlier ones are still being written, so that they share a write and a sync', async () => {
    // Arrange: reports whose recording never finishes by itself
    const taken: string[] = [];
    const finish: Array<() => void> = [];
    await serve(
      (r) =>
        new Promise((resolve) => {
          taken.push(r.text);
          finish.push(() => resolve({ outcome: 'recorded' }));
        }),
    );
    const tray = rawTray(path);

    // Act
    tray.socket.write(lines([HELLO, report(1, 'r-1'), report(2, 'r-2'), report(3, 'r-3')]));

    // Assert: all three are taken at once; none is acknowledged before it is recorded
    await until(() => taken.length === 3, 'three reports taken while none was finished');
    expect(tray.acks()).toEqual([]);
    finish[1]!();
    await until(() => tray.acks().length === 1, 'an ack');
    expect(tray.acks()).toEqual([{ v: 1, type: 'tray.report.ack', reportId: 'r-2', outcome: 'recorded' }]);
    finish[0]!();
    finish[2]!();
    await until(() => tray.acks().length === 3, 'three acks');
    tray.socket.destroy();
  });

  it('acknowledges each report once it is durably in the outbox, and records a resend once', async () => {
    // Arrange
    await serve(intoOutbox);
    const first = rawTray(path);

    // Act: a report, then the same report again on a new connection (the tray never saw the ack)
    first.socket.write(lines([HELLO, report(1, 'r-1')]));
    await until(() => first.acks().length === 1, 'the first ack');
    expect(outbox.pendingCount).toBe(1);
    first.socket.destroy();
    const again = rawTray(path);
    again.socket.write(lines([HELLO, report(1, 'r-1'), report(1, 'r-1'), report(2, 'r-2')]));
    await until(() => again.acks().length === 3, 'three acks');

    // Assert: acknowledged every time, recorded once per report id
    expect(again.acks().map((a) => a.reportId)).toEqual(['r-1', 'r-1', 'r-2']);
    expect((await recorded(outbox)).map((e) => (e.data as { text: string }).text)).toEqual(['printer 1 says error 5', 'printer 2 says error 5']);
    again.socket.destroy();
  });

  it('does not acknowledge a report it could not record, so the tray sends it again', async () => {
    // Arrange: the first attempt fails (a full disk, say)
    let attempts = 0;
    await serve(async (r) => {
      if (++attempts === 1) throw new Error('ENOSPC');
      return intoOutbox(r, {});
    });
    const tray = rawTray(path);

    // Act
    tray.socket.write(lines([HELLO, report(1, 'r-1')]));
    await until(() => attempts === 1, 'the first attempt');
    tray.socket.write(lines([report(1, 'r-1')]));

    // Assert
    await until(() => tray.acks().length === 1, 'an ack for the second attempt');
    expect(attempts).toBe(2);
    expect(outbox.pendingCount).toBe(1);
    tray.socket.destroy();
  });
});
