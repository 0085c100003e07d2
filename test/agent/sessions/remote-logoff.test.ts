import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { carryOutLogoff } from '../../../agent/sessions/remote-logoff';
import { CommandSessionControl } from '../../../agent/sessions/session-control';
import { loginctlSignOut } from '../../../agent/sessions/linux/sign-out';
import { LogindSessions } from '../../../agent/sessions/session-directory';
import type { EventDraft } from '../../../agent/core/events';
import type { CommandRunner } from '../../../agent/os/command-runner';
import { tempDir } from '../../support/cli';

/** A lab PC where Amy has her desktop (3) and an ssh login (8), and Ben a desktop (5). */
function labPc() {
  const dir = tempDir('logind');
  writeFileSync(join(dir, '3'), 'UID=1000\nUSER=amy.p\nACTIVE=1\nREMOTE=0\nTYPE=x11\nCLASS=user\n');
  writeFileSync(join(dir, '8'), 'UID=1000\nUSER=amy.p\nACTIVE=1\nREMOTE=1\nTYPE=tty\nCLASS=user\n');
  writeFileSync(join(dir, '5'), 'UID=1001\nUSER=ben.k\nACTIVE=0\nREMOTE=0\nTYPE=x11\nCLASS=user\n');
  const ran: string[][] = [];
  let exitCode = 0;
  const runner: CommandRunner = { run: async (file, args) => (ran.push([file, ...args]), { stdout: '', code: exitCode }) };
  const events: EventDraft[] = [];
  const deps = {
    directory: new LogindSessions(dir),
    control: new CommandSessionControl(loginctlSignOut, runner),
    record: async (e: EventDraft) => void events.push(e),
    now: () => new Date('2026-11-23T12:00:00.000Z'),
  };
  return { deps, ran, events, failNext: () => (exitCode = 1) };
}

describe("the network manager's remote logoff", () => {
  it('ends one session with exactly the command logind needs, and records it', async () => {
    const pc = labPc();
    expect(await carryOutLogoff({ kind: 'logoff', target: { scope: 'session', sessionId: '5' } }, pc.deps)).toBeUndefined();
    expect(pc.ran).toEqual([['loginctl', 'terminate-session', '5']]);
    expect(pc.events).toEqual([
      {
        type: 'session.logoff',
        severity: 'notice',
        time: '2026-11-23T12:00:00.000Z',
        data: { sessionId: '5', user: 'ben.k', reason: 'remote', confirmed: true },
      },
    ]);
  });

  it("ends every one of a user's sessions, whatever the case of the name, or every session on the device", async () => {
    const pc = labPc();
    await carryOutLogoff({ kind: 'logoff', target: { scope: 'user', user: 'AMY.P' } }, pc.deps);
    expect(pc.ran).toEqual([
      ['loginctl', 'terminate-session', '3'],
      ['loginctl', 'terminate-session', '8'],
    ]);
    const all = labPc();
    await carryOutLogoff({ kind: 'logoff', target: { scope: 'device' } }, all.deps);
    expect(all.ran.map((r) => r[2])).toEqual(['3', '5', '8']);
  });

  it('fails with a code when no session matches or the OS refuses, and records the unconfirmed logoff', async () => {
    const pc = labPc();
    expect(await carryOutLogoff({ kind: 'logoff', target: { scope: 'session', sessionId: '42' } }, pc.deps)).toMatchObject({ code: 'INV_ERR_SESSION_UNKNOWN' });
    pc.failNext();
    expect(await carryOutLogoff({ kind: 'logoff', target: { scope: 'session', sessionId: '3' } }, pc.deps)).toMatchObject({ code: 'INV_ERR_SIGN_OUT_FAILED' });
    expect(pc.events).toEqual([expect.objectContaining({ data: { sessionId: '3', user: 'amy.p', reason: 'remote', confirmed: false } })]);
  });
});
