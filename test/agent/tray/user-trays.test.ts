import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TrayServer } from '../../../agent/tray/tray-server';
import { UserTrays } from '../../../agent/tray/user-trays';
import type { TrayNotice } from '../../../shared/protocol';
import { tempDir } from '../../support/cli';
import { silentLogger } from '../../support/harness';

const AMY = 1000;
const SOMEONE_ELSE = 65534;
const asRoot = process.getuid?.() === 0;
if (!asRoot) process.stdout.write('user-trays: skipping: the per-user socket tests change owners and run clients as other users, which needs root\n');
const describeAsRoot = asRoot ? describe : describe.skip;

const notice: TrayNotice = { v: 1, type: 'tray.notice', noticeId: 'usb-1', kind: 'usb-blocked', title: 'Stopped', body: 'Take it out.', actions: ['dismiss'] };

/** A tray client in its own process, running as `uid`: prints what it received, or the error code it got. */
function clientAs(uid: number, socket: string, send: unknown[] = [], hello: Record<string, unknown> = {}): Promise<string> {
  const script = `
    const s = require('node:net').connect(${JSON.stringify(socket)});
    let out = '';
    s.on('close', () => { console.log(out.trim() || 'CLOSED'); process.exit(0); });
    s.on('connect', () => { s.write(JSON.stringify({ v: 1, type: 'tray.hello', trayVersion: '1', ...${JSON.stringify(hello)} }) + '\\n'); for (const m of ${JSON.stringify(send)}) s.write(JSON.stringify(m) + '\\n'); });
    // Done once the agent's first line has arrived (and the answers have had time to be read), or after 3 s.
    s.on('data', (d) => { out += d; if (out.includes('\\n')) setTimeout(() => { console.log(out.trim()); process.exit(0); }, 100); });
    s.on('error', (e) => { console.log('ERROR ' + e.code); process.exit(0); });
    setTimeout(() => { console.log(out.trim()); process.exit(0); }, 3000);
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { uid, gid: uid, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('exit', () => resolve(stdout.trim()));
  });
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error('condition not reached within 4 s');
}

describeAsRoot('a tray socket for each signed-in user', () => {
  it("lets each user's tray in through its own socket only, and knows whose answer it is", async () => {
    // Arrange: a logind-style users folder saying Amy is signed in, and a sockets folder only root can write.
    const root = tempDir('user-trays');
    chmodSync(root, 0o755);
    const usersDir = join(root, 'users');
    mkdirSync(usersDir);
    writeFileSync(join(usersDir, String(AMY)), '');
    const answers: Array<{ uid?: number; noticeId: string }> = [];
    const trays = new UserTrays({
      dir: join(root, 'trays'),
      users: { list: async () => [AMY] },
      logger: silentLogger(),
      onAnswer: async (a, from) => {
        answers.push({ ...from, noticeId: a.noticeId });
        return { ok: true };
      },
    });
    await trays.sync();
    trays.show(notice);
    const socket = join(root, 'trays', `${AMY}.sock`);

    // Act and assert: Amy's tray gets the notice and its answer is Amy's; anyone else is refused by the OS.
    expect(statSync(socket)).toMatchObject({ uid: AMY });
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    const amy = await clientAs(AMY, socket, [{ v: 1, type: 'tray.answer', noticeId: 'usb-1', action: 'ask-permission', text: 'art' }]);
    expect(JSON.parse(amy)).toMatchObject({ type: 'tray.notice', noticeId: 'usb-1' });
    await until(() => answers.length > 0);
    expect(answers).toEqual([{ uid: AMY, noticeId: 'usb-1' }]);
    expect(await clientAs(SOMEONE_ELSE, socket)).toBe('ERROR EACCES');
    await trays.close();
  });

  it('opens a socket when a user signs in and removes it when they sign out', async () => {
    const root = tempDir('user-trays');
    let signedIn = [AMY];
    const trays = new UserTrays({
      dir: join(root, 'trays'),
      users: { list: async () => signedIn },
      logger: silentLogger(),
      onAnswer: async () => ({ ok: true }),
    });
    await trays.sync();
    expect(trays.uids).toEqual([AMY]);
    expect(existsSync(join(root, 'trays', `${AMY}.sock`))).toBe(true);
    signedIn = [];
    await trays.sync();
    expect(trays.uids).toEqual([]);
    expect(readdirSync(join(root, 'trays'))).toEqual([]);
    await trays.close();
  });

  it('refuses a sockets folder that someone else could write', async () => {
    const root = tempDir('user-trays');
    mkdirSync(join(root, 'trays'), { mode: 0o777 });
    chmodSync(join(root, 'trays'), 0o777);
    const trays = new UserTrays({ dir: join(root, 'trays'), users: { list: async () => [AMY] }, logger: silentLogger(), onAnswer: async () => ({ ok: true }) });
    await expect(trays.sync()).rejects.toThrow(/must belong to root/);
  });
  it('reports a signed-in user whose tray has not said hello within the grace period, once per absence', async () => {
    const root = tempDir('user-trays');
    chmodSync(root, 0o755);
    const clock = { now: 1_000_000 };
    const missing: Array<[number, number]> = [];
    const trays = new UserTrays({
      dir: join(root, 'trays'),
      users: { list: async () => [AMY] },
      logger: silentLogger(),
      onAnswer: async () => ({ ok: true }),
      graceSeconds: () => 120,
      now: () => clock.now,
      onMissing: (uid, since) => missing.push([uid, since]),
    });
    await trays.sync();
    clock.now += 119_000;
    await trays.sync();
    expect(missing).toEqual([]);
    clock.now += 2_000;
    await trays.sync();
    await trays.sync();
    expect(missing).toEqual([[AMY, 121]]);

    // The tray starts: no longer missing. It is killed: reported again after another grace period.
    const tray = connect(join(root, 'trays', `${AMY}.sock`));
    tray.write(`${JSON.stringify({ v: 1, type: 'tray.hello', trayVersion: '1' })}\n`);
    await until(() => trays.traysOf(AMY) === 1);
    await trays.sync();
    tray.destroy();
    await until(() => trays.traysOf(AMY) === 0);
    await trays.sync();
    clock.now += 121_000;
    await trays.sync();
    expect(missing).toEqual([
      [AMY, 121],
      [AMY, 121],
    ]);
    await trays.close();
  });

  it('knows which session a tray is in, cuts off a tray that names a session not its own, and keeps personal notices personal', async () => {
    // Arrange: Amy is signed in as session 3; session 5 is somebody else's.
    const root = tempDir('user-trays');
    chmodSync(root, 0o755);
    const hellos: unknown[] = [];
    const idle: unknown[] = [];
    const trays = new UserTrays({
      dir: join(root, 'trays'),
      users: { list: async () => [AMY, SOMEONE_ELSE] },
      logger: silentLogger(),
      onAnswer: async () => ({ ok: true }),
      verifySession: async (uid, sessionId) => (uid === AMY && sessionId === '3') || (uid === SOMEONE_ELSE && sessionId === '5'),
      onHello: (from) => hellos.push(from),
      onIdle: (seconds, from) => idle.push({ seconds, ...from }),
    });
    await trays.sync();
    const amySocket = join(root, 'trays', `${AMY}.sock`);
    trays.showTo(SOMEONE_ELSE, { ...notice, noticeId: 'aup-65534', kind: 'aup-agreement' });
    trays.showTo(AMY, { ...notice, noticeId: 'aup-1000', kind: 'aup-agreement' });

    // Act and assert: claiming the other user's session ends the connection before anything is sent.
    expect(await clientAs(AMY, amySocket, [], { sessionId: '5' })).toBe('CLOSED');
    expect(hellos).toEqual([]);

    // Her own session: she gets her notice only, and her idle time arrives as hers.
    const amy = await clientAs(AMY, amySocket, [{ v: 1, type: 'tray.idle', idleSeconds: 42 }], { sessionId: '3' });
    expect(amy.split('\n').map((l) => JSON.parse(l).noticeId)).toEqual(['aup-1000']);
    await until(() => idle.length > 0);
    expect(hellos).toEqual([{ uid: AMY, sessionId: '3' }]);
    expect(idle).toEqual([{ seconds: 42, uid: AMY, sessionId: '3' }]);
    await trays.close();
  });

  it('never lets another user in while a socket is being made, even under umask 000', async () => {
    // Arrange: a sockets folder anyone may enter (as /run/invigilator/trays), and
    // another user's process trying to connect to Amy's socket as fast as it can
    const root = tempDir('user-trays');
    chmodSync(root, 0o755);
    const socket = join(root, `${AMY}.sock`);
    const attacker = spawn(
      process.execPath,
      [
        '-e',
        `
        const net = require('node:net');
        let got = 0, tries = 0, stop = false;
        const report = JSON.stringify({ v: 1, type: 'tray.hello', trayVersion: '1' }) + '\\n' + JSON.stringify({ v: 1, type: 'tray.report', kind: 'broken', text: 'in her name' }) + '\\n';
        const attempt = () => {
          if (stop) return;
          tries++;
          const s = net.connect(${JSON.stringify(socket)});
          s.on('connect', () => { got++; s.end(report); });
          s.on('error', () => undefined);
          s.on('close', () => setImmediate(attempt));
        };
        for (let i = 0; i < 16; i++) attempt();
        console.log('ready');
        const done = () => { stop = true; console.log(JSON.stringify({ got, tries })); process.exit(0); };
        process.stdin.on('end', done);
        process.stdin.resume();
        setTimeout(done, 60000);
      `,
      ],
      { uid: SOMEONE_ELSE, gid: SOMEONE_ELSE, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    attacker.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => attacker.on('exit', () => resolve()));
    await until(() => out.startsWith('ready'));
    const reports: unknown[] = [];
    const umask = process.umask(0);
    try {
      // Act: Amy signs in and out 200 times
      for (let i = 0; i < 200; i++) {
        const server = new TrayServer({
          path: socket,
          logger: silentLogger(),
          owner: { uid: AMY, gid: AMY },
          onAnswer: async () => ({ ok: true }),
          onReport: async (r) => (reports.push(r), { outcome: 'recorded' }),
        });
        await server.listen();
        expect(statSync(socket)).toMatchObject({ uid: AMY, mode: expect.any(Number) });
        expect(statSync(socket).mode & 0o777).toBe(0o600);
        await server.close();
      }
    } finally {
      process.umask(umask);
      attacker.stdin.end();
      await exited;
    }

    // Assert: the attacker tried many times and never got a connection
    const { got, tries } = JSON.parse(out.slice('ready'.length)) as { got: number; tries: number };
    expect(tries).toBeGreaterThan(100);
    expect(got).toBe(0);
    expect(reports).toEqual([]);
    // Nothing left behind: no socket once closed, no folder it was made in
    expect(readdirSync(root)).toEqual([]);
  });
});
