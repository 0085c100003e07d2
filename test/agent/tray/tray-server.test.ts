import { statSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { join } from 'node:path';
import type { AnswerResult } from '../../../agent/core/notices';
import { TrayServer } from '../../../agent/tray/tray-server';
import type { TrayNotice } from '../../../shared/protocol';
import { tempDir } from '../../support/cli';
import { silentLogger } from '../../support/harness';

const notice = (noticeId: string): TrayNotice => ({
  v: 1,
  type: 'tray.notice',
  noticeId,
  kind: 'usb-blocked',
  title: 'This memory stick is not locked',
  body: 'Please take it out.',
  actions: ['dismiss', 'ask-permission', 'enter-code'],
});

/** A tray client on the real socket, collecting every line the agent sends. */
class Client {
  readonly received: Array<Record<string, unknown>> = [];
  closed = false;
  private buffer = '';
  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      const lines = this.buffer.split('\n');
      this.buffer = lines.pop()!;
      for (const l of lines) this.received.push(JSON.parse(l) as Record<string, unknown>);
    });
    socket.on('close', () => (this.closed = true));
  }
  static open(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }
  send(message: unknown): void {
    this.socket.write(`${typeof message === 'string' ? message : JSON.stringify(message)}\n`);
  }
  async until(check: () => boolean): Promise<void> {
    for (let i = 0; i < 800 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
    if (!check()) throw new Error(`not reached; received ${JSON.stringify(this.received)}`);
  }
}

describe('the tray channel', () => {
  let server: TrayServer;
  let path: string;
  const answers: unknown[] = [];
  let result: AnswerResult = { ok: true };

  beforeEach(async () => {
    path = join(tempDir('tray'), 'tray.sock');
    answers.length = 0;
    result = { ok: true };
    server = new TrayServer({
      path,
      logger: silentLogger(),
      onAnswer: async (a) => {
        answers.push(a);
        return result;
      },
    });
    await server.listen();
  });
  afterEach(() => server.close());

  it('is a socket only its owner can open', () => {
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('gives a tray that says hello the notices already up, then new ones and withdrawals', async () => {
    server.show(notice('usb-1'));
    const tray = await Client.open(path);
    tray.send({ v: 1, type: 'tray.hello', trayVersion: '0.1.0' });
    await tray.until(() => tray.received.length === 1);
    server.show(notice('usb-2'));
    server.withdraw('usb-1');
    await tray.until(() => tray.received.length === 3);
    expect(tray.received.map((m) => [m.type, m.noticeId])).toEqual([
      ['tray.notice', 'usb-1'],
      ['tray.notice', 'usb-2'],
      ['tray.withdraw', 'usb-1'],
    ]);
    tray.socket.destroy();
  });

  it('passes answers on, and tells the tray in plain words when one is refused', async () => {
    const tray = await Client.open(path);
    tray.send({ v: 1, type: 'tray.hello', trayVersion: '0.1.0' });
    tray.send({ v: 1, type: 'tray.answer', noticeId: 'usb-1', action: 'ask-permission', text: 'my homework' });
    await tray.until(() => answers.length === 1);
    expect(answers[0]).toMatchObject({ noticeId: 'usb-1', action: 'ask-permission', text: 'my homework' });
    result = { ok: false, code: 'INV_ERR_OFFLINE_CODE_USED', message: 'used' };
    tray.send({ v: 1, type: 'tray.answer', noticeId: 'usb-1', action: 'enter-code', target: 'ABCD-EFGH-JKMN' });
    await tray.until(() => tray.received.length === 1);
    expect(tray.received[0]).toMatchObject({ kind: 'information', title: 'That code did not work', body: 'the offline code has been used already.' });
    tray.socket.destroy();
  });

  it.each([
    ['a message before hello', JSON.stringify({ v: 1, type: 'tray.answer', noticeId: 'usb-1', action: 'dismiss' })],
    ['broken JSON', '{"v":1,'],
    ['an unknown message type', JSON.stringify({ v: 1, type: 'tray.sudo' })],
    ['a forbidden key', '{"v":1,"type":"tray.hello","trayVersion":"1","__proto__":{"x":1}}'],
    ['a line of 100 KB with no end', 'x'.repeat(100 * 1024)],
  ])('cuts off a client that sends %s, and goes on serving others', async (_, line) => {
    const bad = await Client.open(path);
    bad.send(line);
    await bad.until(() => bad.closed);
    expect(answers).toEqual([]);
    const good = await Client.open(path);
    good.send({ v: 1, type: 'tray.hello', trayVersion: '0.1.0' });
    server.show(notice('usb-9'));
    await good.until(() => good.received.length === 1);
    good.socket.destroy();
  });
  it('survives a tray that dies in the middle of a message, and gives a restarted tray the notices still up', async () => {
    server.show(notice('usb-7'));
    const dying = await Client.open(path);
    dying.send({ v: 1, type: 'tray.hello', trayVersion: '0.1.0' });
    dying.socket.write('{"v":1,"type":"tray.answer","noticeId":"usb-7","act');
    dying.socket.destroy();
    const restarted = await Client.open(path);
    restarted.send({ v: 1, type: 'tray.hello', trayVersion: '0.1.0' });
    await restarted.until(() => restarted.received.length === 1);
    expect(restarted.received[0]).toMatchObject({ type: 'tray.notice', noticeId: 'usb-7' });
    expect(answers).toEqual([]);
    restarted.socket.destroy();
  });
});
