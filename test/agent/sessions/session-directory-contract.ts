import { SIGN_OUT_COMMANDS } from '../../../cli/sessions-for';
import type { SessionDirectory, UserSession } from '../../../agent/sessions/session-directory';
import { traySessions } from '../../../agent/sessions/tray-missing';
import type { Platform } from '../../../shared/protocol';

/**
 * The situations every rig can set up. Each OS rig backs them with what that
 * OS would show (logind's session files, recorded quser output, recorded
 * stat/who/id output):
 * - `amy-and-ben`: Amy at the computer's own screen (a desktop, active, local),
 *   and Ben signed in over the network (ssh, or remote desktop on Windows);
 * - `nobody`: the login screen is up and nobody is signed in;
 * - `garbage`: the OS's source answers with GARBAGE instead of its format;
 * - `over-long-line`: `amy-and-ben`, plus one line of about a megabyte where
 *   the OS's format has lines (before Amy's where the format allows it);
 * - `hostile-user-name`: `amy-and-ben`, plus a third session whose user name
 *   is HOSTILE_NAME;
 * - `command-missing`: the program (or, on Linux, logind's folder) is absent,
 *   so reading it fails.
 */
export type SessionScenario = 'amy-and-ben' | 'nobody' | 'garbage' | 'over-long-line' | 'hostile-user-name' | 'command-missing';

/** How one OS names a person's session: these may differ between OSes; nothing else about the session may. */
export interface OsIdentity {
  sessionId: string;
  uid: number;
  user: string;
  /** When the OS says the session began; absent where this OS's source gives no time. */
  since?: string;
}

export interface SessionRig {
  platform: Platform;
  directory: SessionDirectory;
  amy: OsIdentity;
  ben: OsIdentity;
  /** How Ben signs in from elsewhere on this OS: ssh gives a text session, remote desktop a desktop. */
  benSignsInBy: 'ssh' | 'remote-desktop';
}

/** Markup, a terminal escape, a bell, a right-to-left override: no account is called this, and no screen may be fooled by it. */
export const HOSTILE_NAME = '<script>alert(1)</script>\u001b[2J\u0007\u202eevil';

/** Deterministic noise (seeded), with line breaks, so every run feeds the same bytes. */
export function garbage(chars = 8192, seed = 0x1234567): string {
  let state = seed;
  let out = '';
  for (let i = 0; i < chars; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const r = state >>> 16;
    out += r % 37 === 0 ? '\n' : String.fromCharCode(r % 2 === 0 ? r % 0x7f : 0x80 + (r % 0x2f80));
  }
  return out;
}

/** About a megabyte without a line break. */
export const OVER_LONG_LINE = ' ' + 'A'.repeat(1_048_576) + '  9  Active  .  23/11/2026 08:00';

const bySessionId = (a: UserSession, b: UserSession) => a.sessionId.localeCompare(b.sessionId);

function expected(id: OsIdentity, shape: Omit<UserSession, 'sessionId' | 'uid' | 'user' | 'since'>): UserSession {
  return { sessionId: id.sessionId, uid: id.uid, user: id.user, ...shape, ...(id.since !== undefined ? { since: id.since } : {}) };
}

/** What every reported session must be, whatever the input: something the rest of the agent can use, and sign out. */
function expectWellFormed(platform: Platform, sessions: readonly UserSession[]): void {
  expect(Array.isArray(sessions)).toBe(true);
  expect(new Set(sessions.map((s) => s.sessionId)).size).toBe(sessions.length);
  for (const s of sessions) {
    expect(Number.isInteger(s.uid) && s.uid >= 0).toBe(true);
    expect(typeof s.user).toBe('string');
    expect(s.user.length).toBeLessThanOrEqual(256);
    expect(typeof s.active).toBe('boolean');
    expect(typeof s.remote).toBe('boolean');
    expect(['graphical', 'text', 'other']).toContain(s.kind);
    if (s.since !== undefined) expect(new Date(s.since).toISOString()).toBe(s.since);
    // The session control takes what the directory gives: a reported session can always be named to the OS's sign-out command.
    expect(() => SIGN_OUT_COMMANDS[platform]({ sessionId: s.sessionId, uid: s.uid })).not.toThrow();
  }
}

/** Every SessionDirectory passes this suite; `makeRig` builds a fresh rig showing the scenario. */
export function sessionDirectoryContract(name: string, makeRig: (scenario: SessionScenario) => Promise<SessionRig>): void {
  describe(`the ${name} session directory (contract)`, () => {
    const amyAndBen = (rig: SessionRig): UserSession[] =>
      [
        expected(rig.amy, { active: true, remote: false, kind: 'graphical' }),
        expected(rig.ben, { active: true, remote: true, kind: rig.benSignsInBy === 'ssh' ? 'text' : 'graphical' }),
      ].sort(bySessionId);

    it('reports Amy at the screen and Ben from elsewhere as the same two sessions as on every other OS', async () => {
      const rig = await makeRig('amy-and-ben');
      const sessions = await rig.directory.sessions();
      expect([...sessions].sort(bySessionId)).toEqual(amyAndBen(rig));
      expectWellFormed(rig.platform, sessions);
    });

    it("gives the tray Amy's desktop only: Ben's remote sign-in runs no tray here", async () => {
      const rig = await makeRig('amy-and-ben');
      const sessions = await rig.directory.sessions();
      expect(traySessions(sessions, rig.amy.uid).map((s) => s.sessionId)).toEqual([rig.amy.sessionId]);
      expect(traySessions(sessions, rig.ben.uid)).toEqual([]);
    });

    it('answers the same when asked again', async () => {
      const rig = await makeRig('amy-and-ben');
      const first = await rig.directory.sessions();
      expect(await rig.directory.sessions()).toEqual(first);
    });

    it('reports nobody at the login screen', async () => {
      const rig = await makeRig('nobody');
      expect(await rig.directory.sessions()).toEqual([]);
    });

    it('reports nobody, and does not throw, when the source answers with garbage', async () => {
      const rig = await makeRig('garbage');
      expect(await rig.directory.sessions()).toEqual([]);
    });

    it('skips an over-long line and still reports Amy', async () => {
      const rig = await makeRig('over-long-line');
      const sessions = await rig.directory.sessions();
      expect(sessions).toContainEqual(amyAndBen(rig).find((s) => s.sessionId === rig.amy.sessionId));
      expectWellFormed(rig.platform, sessions);
    });

    it('still reports Amy and Ben beside a user name made of markup and control characters, and stays well-formed', async () => {
      const rig = await makeRig('hostile-user-name');
      const sessions = await rig.directory.sessions();
      for (const s of amyAndBen(rig)) expect(sessions).toContainEqual(s);
      expect(sessions.length).toBeLessThanOrEqual(3);
      expectWellFormed(rig.platform, sessions);
    });

    it('reports nobody, and does not throw, when the source cannot be read at all', async () => {
      const rig = await makeRig('command-missing');
      expect(await rig.directory.sessions()).toEqual([]);
    });
  });
}
