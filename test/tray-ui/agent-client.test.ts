import { type Server, type Socket, createServer } from 'node:net';
import { join } from 'node:path';
import type { AnswerResult } from '../../agent/core/notices';
import { TrayServer } from '../../agent/tray/tray-server';
import type { AgentToTray, TrayNotice, TrayToAgent } from '../../shared/protocol';
import { AgentClient, type ConnectionStatus } from '../../tray-ui/main/agent-client';
import { UnsentReports } from '../../tray-ui/main/unsent-reports';
import { tempDir } from '../support/cli';
import { silentLogger } from '../support/harness';

const notice = (noticeId: string): TrayNotice => ({
  v: 1,
  type: 'tray.notice',
  noticeId,
  kind: 'usb-blocked',
  title: 'This memory stick is not allowed',
  body: 'Please take it out.',
  actions: ['dismiss', 'ask-permission', 'enter-code'],
});

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!check()) throw new Error(`not reached: ${what}`);
}

/** The real agent end on a real Unix socket, and the tray's client pointed at it. */
describe("the tray's agent client, against the real TrayServer", () => {
  let path: string;
  let server: TrayServer;
  let client: AgentClient;
  let answers: TrayToAgent[];
  let received: AgentToTray[];
  let statuses: ConnectionStatus[];

  const newServer = () =>
    new TrayServer({
      path,
      logger: silentLogger(),
      onAnswer: async (a): Promise<AnswerResult> => {
        answers.push(a);
        return { ok: true };
      },
    });

  beforeEach(async () => {
    path = join(tempDir('tray-client'), 'tray.sock');
    answers = [];
    received = [];
    statuses = [];
    server = newServer();
    await server.listen();
    client = new AgentClient({ path, trayVersion: '0.1.0', initialBackoffMs: 20, maxBackoffMs: 100 });
    client.onMessage((m) => received.push(m));
    client.onStatus((s) => statuses.push(s));
  });
  afterEach(async () => {
    client.stop();
    await server.close();
  });

  it('says hello and receives the notices already pending, then new ones and withdrawals', async () => {
    server.show(notice('usb-1'));
    client.start();
    await until(() => received.length === 1, 'the pending notice');
    expect(client.status).toBe('connected');
    expect(received).toEqual([notice('usb-1')]);
    server.show(notice('usb-2'));
    server.withdraw('usb-1');
    await until(() => received.length === 3, 'a new notice and a withdrawal');
    expect(received.slice(1)).toEqual([notice('usb-2'), { v: 1, type: 'tray.withdraw', noticeId: 'usb-1' }]);
  });

  it('sends an answer the agent acts on', async () => {
    server.show(notice('usb-1'));
    client.start();
    await until(() => received.length === 1, 'the pending notice');
    expect(client.send({ v: 1, type: 'tray.answer', noticeId: 'usb-1', action: 'ask-permission', text: 'For my homework' })).toBe(true);
    await until(() => answers.length === 1, 'the answer');
    expect(answers).toEqual([{ v: 1, type: 'tray.answer', noticeId: 'usb-1', action: 'ask-permission', text: 'For my homework' }]);
    // The agent kept the connection: the hello was accepted and the answer was valid.
    expect(client.status).toBe('connected');
  });

  it('reconnects when the agent restarts, and picks up the notices still pending', async () => {
    client.start();
    await until(() => client.status === 'connected', 'connected');
    await server.close();
    await until(() => client.status === 'disconnected', 'disconnected');
    expect(client.send({ v: 1, type: 'tray.idle', idleSeconds: 5 })).toBe(false);
    // A few failed attempts while the agent is away.
    await new Promise((r) => setTimeout(r, 100));
    server = newServer();
    server.show(notice('usb-7'));
    await server.listen();
    await until(() => received.length === 1, 'the pending notice after the restart');
    expect(received).toEqual([notice('usb-7')]);
    expect(statuses).toEqual(['connected', 'disconnected', 'connected']);
  });

  it('sends a report again after the agent restarts when it was never acknowledged, and the agent records it once', async () => {
    // Arrange: an agent that reads reports but dies before recording any
    await server.close();
    const read: TrayToAgent[] = [];
    server = new TrayServer({
      path,
      logger: silentLogger(),
      onAnswer: async () => ({ ok: true }),
      onReport: (r) => (read.push(r), new Promise(() => undefined)),
    });
    await server.listen();
    const reports = new UnsentReports({ send: (m) => client.send(m), newId: () => 'r-1' });
    client.onMessage((m) => (m.type === 'tray.report.ack' ? reports.acknowledged(m.reportId) : undefined));
    client.onStatus((s) => (s === 'connected' ? reports.resend() : undefined));
    client.start();
    await until(() => client.status === 'connected', 'connected');
    reports.submit({ v: 1, type: 'tray.report', kind: 'virus', text: 'My files are locked' });
    await until(() => read.length === 1, 'the report read by the first agent');

    // Act: the agent restarts and this time records what it is sent
    await server.close();
    const recorded: TrayToAgent[] = [];
    server = new TrayServer({
      path,
      logger: silentLogger(),
      onAnswer: async () => ({ ok: true }),
      onReport: async (r) => (recorded.push(r), { outcome: 'recorded' }),
    });
    await server.listen();

    // Assert: sent again once connected, recorded once, and forgotten by the tray once acknowledged
    await until(() => reports.pending === 0, 'the report acknowledged');
    expect(recorded).toEqual([{ v: 1, type: 'tray.report', kind: 'virus', text: 'My files are locked', reportId: 'r-1' }]);
    reports.resend();
    await new Promise((r) => setTimeout(r, 50));
    expect(recorded).toHaveLength(1);
  });

  it('keeps trying while the agent is not there at first', async () => {
    await server.close();
    client.start();
    await new Promise((r) => setTimeout(r, 80));
    expect(client.status).toBe('disconnected');
    server = newServer();
    server.show(notice('usb-3'));
    await server.listen();
    await until(() => received.length === 1, 'the notice once the agent is up');
    expect(client.status).toBe('connected');
  });

  it('stops trying once stopped', async () => {
    client.start();
    await until(() => client.status === 'connected', 'connected');
    client.stop();
    await server.close();
    server = newServer();
    await server.listen();
    await new Promise((r) => setTimeout(r, 80));
    expect(client.status).toBe('disconnected');
    expect(statuses).toEqual(['connected', 'disconnected']);
  });
});

describe("the tray's agent client, against a peer sending garbage", () => {
  let server: Server;
  let peer: Socket | undefined;
  let firstLine: Promise<string>;
  let client: AgentClient;

  beforeEach(async () => {
    const path = join(tempDir('tray-garbage'), 'tray.sock');
    firstLine = new Promise((resolve) => {
      server = createServer((socket) => {
        peer = socket;
        let buffer = '';
        socket.setEncoding('utf8');
        socket.on('data', (d: string) => {
          buffer += d;
          if (buffer.includes('\n')) resolve(buffer.slice(0, buffer.indexOf('\n')));
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    client = new AgentClient({ path, trayVersion: '0.1.0' });
  });
  afterEach(async () => {
    client.stop();
    peer?.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('drops every line that is not a valid message, including one over 64 KiB, and keeps the good ones', async () => {
    const received: AgentToTray[] = [];
    const dropped: string[] = [];
    client = new AgentClient({ path: server.address() as string, trayVersion: '0.1.0', onDropped: (code) => dropped.push(code) });
    client.onMessage((m) => received.push(m));
    client.start();
    expect(JSON.parse(await firstLine)).toEqual({ v: 1, type: 'tray.hello', trayVersion: '0.1.0' });
    const big = JSON.stringify({ ...notice('usb-big'), body: 'x'.repeat(70 * 1024) });
    const lines = [
      '{not json',
      JSON.stringify({ v: 2, type: 'tray.notice' }),
      JSON.stringify({ v: 1, type: 'tray.hello', trayVersion: 'x' }),
      JSON.stringify({ ...notice('usb-1'), __proto__: null, extra: 'field' }),
      JSON.stringify({ v: 1, type: 'tray.withdraw', noticeId: '<img src=x onerror=alert(1)>' }),
      '{"v":1,"type":"tray.withdraw","noticeId":"a","__proto__":{"polluted":true}}',
    ];
    // The oversized line arrives in pieces, as a real socket delivers it.
    peer!.write(`${lines.join('\n')}\n${big.slice(0, 40_000)}`);
    await new Promise((r) => setTimeout(r, 20));
    peer!.write(`${big.slice(40_000)}\n${JSON.stringify(notice('usb-ok'))}\n`);
    await until(() => received.length === 1, 'the good notice');
    expect(received).toEqual([notice('usb-ok')]);
    expect(dropped).toHaveLength(lines.length + 1);
    expect(dropped).toContain('INV_ERR_INPUT_TOO_LARGE');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(client.status).toBe('connected');
  });
});
