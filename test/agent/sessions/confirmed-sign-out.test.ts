import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfirmedSignOut } from '../../../agent/sessions/confirmed-sign-out';
import { LogindSessions } from '../../../agent/sessions/session-directory';
import { tempDir } from '../../support/cli';

describe('a sign-out counts only once the session has gone', () => {
  function lab() {
    const dir = tempDir('logind');
    writeFileSync(join(dir, '3'), 'UID=1000\nUSER=amy.p\nACTIVE=1\nREMOTE=0\nTYPE=x11\nCLASS=user\n');
    const slept: number[] = [];
    return { dir, directory: new LogindSessions(dir), slept, sleep: async (ms: number) => void slept.push(ms) };
  }

  it('succeeds as soon as the OS has ended the session', async () => {
    const t = lab();
    let asked = 0;
    // logind ends the session a moment after loginctl returns: gone at the second look.
    const inner = { signOut: async () => void asked++ };
    const sleep = async (ms: number) => {
      t.slept.push(ms);
      rmSync(join(t.dir, '3'));
    };
    await new ConfirmedSignOut(inner, t.directory, { sleep }).signOut({ sessionId: '3', uid: 1000 });
    expect(asked).toBe(1);
    expect(t.slept).toEqual([1000]);
  });

  it('fails with a code when the session is still there after the time allowed', async () => {
    const t = lab();
    const signOut = new ConfirmedSignOut({ signOut: async () => undefined }, t.directory, { timeoutMs: 30_000, everyMs: 1_000, sleep: t.sleep });
    await expect(signOut.signOut({ sessionId: '3', uid: 1000 })).rejects.toMatchObject({ code: 'INV_ERR_SIGN_OUT_FAILED' });
    expect(t.slept).toHaveLength(30);
  });

  it('passes on a refusal from the OS without waiting', async () => {
    const t = lab();
    const refusing = { signOut: async () => Promise.reject(new Error('loginctl: access denied')) };
    await expect(new ConfirmedSignOut(refusing, t.directory, { sleep: t.sleep }).signOut({ sessionId: '3', uid: 1000 })).rejects.toThrow('access denied');
    expect(t.slept).toEqual([]);
  });
});
