import { OsHomeFolders } from '../../../agent/sessions/home-folders';
import type { UserSession } from '../../../agent/sessions/session-directory';
import { createExecFileRunner } from '../../../agent/usb/command-runner';

const session = (uid: number, user: string): UserSession => ({ sessionId: '3', uid, user, active: true, remote: false, kind: 'graphical' });

describe("a signed-in user's home folder", () => {
  it('is found through NSS on Linux (getent, a real process here)', async () => {
    const homes = new OsHomeFolders('linux', createExecFileRunner());
    expect(await homes.of(session(0, 'root'))).toMatchObject({ uid: 0, home: '/root' });
    expect(await homes.of(session(4_000_000, 'ghost'))).toBeUndefined();
  });

  it('is the profile folder on Windows and macOS, and nothing for a name that could climb out of it', async () => {
    const none = createExecFileRunner();
    expect(await new OsHomeFolders('win32', none).of(session(2, 'amy.p'))).toEqual({ uid: 2, home: 'C:\\Users\\amy.p' });
    expect(await new OsHomeFolders('darwin', none).of(session(501, 'amy'))).toEqual({ uid: 501, home: '/Users/amy' });
    expect(await new OsHomeFolders('darwin', none).of(session(501, '../../etc'))).toBeUndefined();
    expect(await new OsHomeFolders('darwin', none).of(session(501, '..'))).toBeUndefined();
    expect(await new OsHomeFolders('win32', none).of(session(2, '..\\Administrator'))).toBeUndefined();
  });
});
