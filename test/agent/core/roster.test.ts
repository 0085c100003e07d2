import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RunningAgent, startAgent } from '../../../agent/agent';
import { Roster } from '../../../agent/core/roster';
import { ConsoleSessions, ID_FILE, STAT_ARGS, STAT_FILE, WHO_ARGS, WHO_FILE } from '../../../agent/sessions/darwin/console-sessions';
import { type GroupSource, IdCommandGroups } from '../../../agent/sessions/roles';
import { LogindSessions, type SessionDirectory, type SignedInUsers, type UserSession } from '../../../agent/sessions/session-directory';
import { QUSER_ARGS, QUSER_FILE, WtsSessions } from '../../../agent/sessions/win32/wts-sessions';
import { RecordedCommands } from '../../../agent/os/recorded-commands';
import { preset } from '../../../shared/policy/presets';
import type { Policy } from '../../../shared/policy/schema';
import { validatePolicy } from '../../../shared/policy/validate';
import type { Platform } from '../../../shared/protocol';
import { eventually, tempDir } from '../../support/cli';
import { ImageMaker } from '../../support/disk-images';
import { type TestCollector, silentLogger, startTestCollector } from '../../support/harness';
import { SysfsFixture } from '../../support/sysfs-fixture';
import { agentConfigFor, trayClient } from '../../support/tray-client';
import { linuxPlatformOn } from '../../support/usb-devices';
import { answerOf, readRecording } from '../sessions/session-directory-recordings';

const basildon = preset('basildon-primary')!;

/**
 * Basildon's roles, with the USB storage rule turned round: the default role
 * (a visitor) is only audited, so a plain stick works for them, while a pupil
 * may use encrypted sticks only and may ask for others. Logoff and the
 * agreement are off so that nothing else happens to Amy's session meanwhile.
 */
const POLICY: Policy = {
  ...basildon,
  id: 'roster-test',
  roles: { ...basildon.roles, default: 'visitor' },
  usbStorage: {
    default: { ...basildon.usbStorage.default, mode: 'audit' },
    roles: { pupil: { mode: 'allow-encrypted', allowRequests: true } },
  },
  logoff: { default: { ...basildon.logoff.default, idle: null, endOfDay: null } },
  aup: { ...basildon.aup, required: false },
};

// ---------------------------------------------------------------------------
// The roster on its own
// ---------------------------------------------------------------------------

const session = (sessionId: string, uid: number, user: string, shape: Partial<UserSession> = {}): UserSession => ({
  sessionId,
  uid,
  user,
  active: true,
  remote: false,
  kind: 'graphical',
  ...shape,
});

/** A session source the test changes by hand, and a group source that counts its lookups. */
function machine(groupsOf: Record<string, string[]> = {}) {
  let now: UserSession[] = [];
  const directory: SessionDirectory = { sessions: async () => now };
  const lookups: string[] = [];
  const groups: GroupSource = {
    groupsOf: async (user) => {
      lookups.push(user);
      const found = groupsOf[user];
      if (!found) throw new Error(`id: '${user}': no such user`);
      return found;
    },
  };
  let policy: Policy = POLICY;
  const changes: Array<string | undefined> = [];
  const roster = new Roster({ directory, groups, policy: () => policy, onScreenChanged: (s) => changes.push(s && `${s.user}/${s.role}`) });
  return {
    roster,
    lookups,
    changes,
    signIn: (...sessions: UserSession[]) => (now = sessions),
    setPolicy: (p: Policy) => (policy = p),
  };
}

describe('the roster of who is signed in', () => {
  it('names the person at the screen: the local desktop in front, not a login from elsewhere or a desktop switched away from', async () => {
    // Arrange: Ben (staff) over ssh and Cat (staff) switched away from; Amy (a pupil) in front of the screen.
    const m = machine({ amy: ['pupils'], ben: ['staff'], cat: ['teachers'] });
    m.signIn(session('7', 1001, 'ben', { remote: true, kind: 'text' }), session('gui-1002', 1002, 'cat', { active: false }), session('3', 1000, 'amy'));

    // Act
    await m.roster.refresh();

    // Assert
    expect(m.roster.atScreen()).toMatchObject({ sessionId: '3', uid: 1000, user: 'amy', role: 'pupil' });
    expect(m.roster.userAtScreen()).toEqual({ name: 'amy', role: 'pupil' });
    expect(m.roster.userOf(1001)).toEqual({ name: 'ben', role: 'staff' });
    expect(m.roster.signedIn().map((s) => [s.user, s.role])).toEqual([
      ['ben', 'staff'],
      ['cat', 'staff'],
      ['amy', 'pupil'],
    ]);
  });

  it('names nobody at the screen when only remote or switched-away sessions are there, and takes a local text console when no desktop is', async () => {
    const m = machine({ amy: ['pupils'], ben: ['staff'] });
    m.signIn(session('7', 1001, 'ben', { remote: true }), session('gui-1000', 1000, 'amy', { active: false }));
    await m.roster.refresh();
    expect(m.roster.atScreen()).toBeUndefined();
    expect(m.roster.userAtScreen()).toBeUndefined();

    m.signIn(session('7', 1001, 'ben', { remote: true }), session('c2', 1000, 'amy', { kind: 'text' }));
    await m.roster.refresh();
    expect(m.roster.atScreen()).toMatchObject({ sessionId: 'c2', user: 'amy' });
  });

  it("gives the policy's default role to a user in none of its groups, to one whose groups cannot be looked up, and to someone not signed in", async () => {
    const m = machine({ dan: ['volunteers-old'] });
    m.signIn(session('3', 1000, 'dan'), session('4', 1003, 'eve'));
    await m.roster.refresh();
    expect(m.roster.bySession('3')?.role).toBe('visitor');
    expect(m.roster.bySession('4')?.role).toBe('visitor');
    expect(m.roster.roleOfUid(4242)).toBe('visitor');
    expect(m.roster.userOf(4242)).toBeUndefined();
  });

  it('looks up groups once per sign-in, follows a policy change at once, and looks again after the user signs in anew', async () => {
    const m = machine({ amy: ['pupils', 'art-club'] });
    m.signIn(session('3', 1000, 'amy'));
    await m.roster.refresh();
    await m.roster.refresh();
    expect(await m.roster.roleOf(session('3', 1000, 'amy'))).toBe('pupil');
    expect(m.lookups).toEqual(['amy']);

    // A pushed policy that makes the art club volunteers applies without asking the OS again.
    m.setPolicy({
      ...POLICY,
      roles: { ...POLICY.roles, definitions: [{ id: 'volunteer', label: 'Volunteer', groups: ['art-club'] }, ...POLICY.roles.definitions] },
    });
    expect(m.roster.atScreen()?.role).toBe('volunteer');
    expect(m.lookups).toEqual(['amy']);

    m.signIn();
    await m.roster.refresh();
    m.signIn(session('5', 1000, 'amy'));
    await m.roster.refresh();
    expect(m.lookups).toEqual(['amy', 'amy']);
  });

  it('says when the person at the screen or their role changes, and only then', async () => {
    const m = machine({ amy: ['pupils'], ben: ['staff'] });
    m.signIn(session('3', 1000, 'amy'));
    await m.roster.refresh();
    await m.roster.refresh();
    m.signIn(session('3', 1000, 'amy'), session('7', 1001, 'ben', { remote: true }));
    await m.roster.refresh();
    m.signIn(session('4', 1001, 'ben'));
    await m.roster.refresh();
    m.signIn();
    await m.roster.refresh();
    expect(m.changes).toEqual(['amy/pupil', 'ben/staff', undefined]);
  });

  it("finds a user's local desktop before their ssh login, and reads the OS once for callers that ask together", async () => {
    let reads = 0;
    const directory: SessionDirectory = {
      sessions: async () => (reads++, [session('9', 1000, 'amy', { remote: true, kind: 'text' }), session('3', 1000, 'amy')]),
    };
    const roster = new Roster({ directory, policy: () => POLICY });
    await Promise.all([roster.refresh(), roster.refresh()]);
    expect(reads).toBe(1);
    expect(roster.byUid(1000)?.sessionId).toBe('3');
  });
});

// ---------------------------------------------------------------------------
// Through the agent, per OS session source, to a real collector
// ---------------------------------------------------------------------------

const images = new ImageMaker(tempDir('roster-images'));
const PLAIN = images.fat('plain.img', 40, 32);
const STICK = { vendorId: 0x0781, productId: 0x5567, interfaceClasses: [8], serial: '4C530001230101110453', manufacturer: 'SanDisk', product: 'Cruzer Blade' };

interface SessionRig {
  platform: Platform;
  directory: SessionDirectory;
  groups: GroupSource;
  /** Where Amy's tray talks to the agent: her own socket (Linux, opened for those the OS lists), or the channel that speaks for no user (Windows, macOS today). */
  tray: { users: SignedInUsers } | 'root-socket';
  amy: { uid: number };
}

/** Linux: logind's session files as recorded, and `id -Gn` answered from recorded outputs. */
function linuxRig(): SessionRig & { logind: string } {
  const dir = tempDir('roster-logind');
  writeFileSync(join(dir, '3'), readRecording('linux/amy-desktop').output);
  writeFileSync(join(dir, '7'), readRecording('linux/ben-ssh').output);
  // Constructed: what `id -Gn -- <user>` prints, the user's own group first.
  const runner = new RecordedCommands()
    .record('id', ['-Gn', '--', 'amy'], { stdout: 'amy pupils\n' })
    .record('id', ['-Gn', '--', 'ben'], { stdout: 'ben staff\n' });
  const logind = new LogindSessions(dir);
  return { platform: 'linux', directory: logind, groups: new IdCommandGroups(runner), tray: { users: logind }, amy: { uid: 1000 }, logind: dir };
}

/** Windows: recorded quser (Amy at the console, Ben over remote desktop); Windows has no group source yet, so a double stands in. */
function win32Rig(): SessionRig {
  const runner = new RecordedCommands().record(QUSER_FILE, QUSER_ARGS, answerOf('win32/quser-amy-console-ben-rdp.txt'));
  const groups: GroupSource = { groupsOf: async (user) => (user === 'amy' ? ['Pupils'] : user === 'ben' ? ['Teachers'] : []) };
  return { platform: 'win32', directory: new WtsSessions({ runner }), groups, tray: 'root-socket', amy: { uid: 1 } };
}

/** macOS: recorded stat, who and id (Amy at the console, Ben over ssh), and `id -Gn` for their groups. */
function darwinRig(): SessionRig {
  const runner = new RecordedCommands()
    .record(STAT_FILE, STAT_ARGS, answerOf('darwin/stat-console-amy.txt'))
    .record(WHO_FILE, WHO_ARGS, answerOf('darwin/who-amy-console-ben-ssh.txt'))
    .record(ID_FILE, ['-u', 'ben'], answerOf('darwin/id-u-ben.txt'))
    .record(ID_FILE, ['-u', 'amy'], { stdout: '501\n' })
    // Constructed: `id -Gn`'s shape on a Mac. Not the usual "staff" primary group: Basildon's staff role names a group called staff.
    .record('id', ['-Gn', '--', 'amy'], { stdout: 'pupils everyone localaccounts\n' })
    .record('id', ['-Gn', '--', 'ben'], { stdout: 'teachers everyone localaccounts\n' });
  return {
    platform: 'darwin',
    directory: new ConsoleSessions({ runner, now: () => new Date(2026, 10, 23, 9, 0) }),
    groups: new IdCommandGroups(runner),
    tray: 'root-socket',
    amy: { uid: 501 },
  };
}

/** One school computer on that OS's session source, with the real USB guard on the Linux adapter over a sysfs tree (the USB OS is not what is tested). */
async function schoolComputer(c: TestCollector, rig: SessionRig) {
  const dataDir = tempDir(`roster-${rig.platform}`);
  const fixture = new SysfsFixture();
  const trays = join(dataDir, 'trays');
  const agent: RunningAgent = await startAgent({
    config: await agentConfigFor(c, dataDir, POLICY.id),
    fallbackPolicy: POLICY,
    logger: silentLogger(),
    platform: rig.platform,
    version: '0.0.0-test',
    linkTuning: { backoffBaseMs: 50, backoffCapMs: 200 },
    sessions: { directory: rig.directory, control: { signOut: async () => undefined }, groups: rig.groups },
    usb: { platform: linuxPlatformOn(fixture, []), control: 'enforce' },
    ...(rig.tray === 'root-socket' ? { trayPath: join(dataDir, 'tray.sock') } : { userTrays: { dir: trays, users: rig.tray.users } }),
    sessionPollMs: 100,
  });
  let tray: ReturnType<typeof trayClient> | undefined;
  return {
    agent,
    /** Amy's tray, on the channel this OS gives it. */
    tray: () => (tray ??= trayClient(rig.tray === 'root-socket' ? join(dataDir, 'tray.sock') : join(trays, `${rig.amy.uid}.sock`))),
    plug: () => fixture.plug('1-1', { ...STICK, disk: { image: PLAIN } }),
    close: async () => {
      tray?.socket.destroy();
      await agent.stop('test over');
      fixture.close();
    },
  };
}

describe.each([
  ['Linux (logind files, id -Gn, her own tray socket)', linuxRig],
  ['Windows (recorded quser, the tray channel that speaks for no user)', win32Rig],
  ['macOS (recorded stat, who and id, the tray channel that speaks for no user)', darwinRig],
])('a pupil at the screen, on %s', (_name, makeRig) => {
  it('is judged under the pupil role, and her request reaches the collector with her name and role; Ben, signed in from elsewhere, does not count', async () => {
    // Arrange: a collector with the policy; Amy (a pupil) at the screen and Ben (staff) signed in remotely.
    expect(validatePolicy(POLICY).ok).toBe(true);
    const c = await startTestCollector({ policy: POLICY });
    const computer = await schoolComputer(c, makeRig());

    // Act: she plugs in a plain stick, which the default role would let in, and asks for it from the notice.
    const tray = computer.tray();
    computer.plug();
    const notice = await eventually(() => tray.notices.find((n) => n.kind === 'usb-blocked'));
    expect(notice.actions).toContain('ask-permission');
    tray.send({ v: 1, type: 'tray.answer', noticeId: notice.noticeId, action: 'ask-permission', text: 'my science homework' });

    // Assert: the network manager sees who asked, and the block is recorded as hers.
    const { requests } = await eventually(async () => {
      const found = await c.store.listPermissionRequests({ limit: 10 });
      return found.requests.length > 0 ? found : undefined;
    });
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ kind: 'usb-device', user: { name: 'amy', role: 'pupil' }, reason: 'my science homework' });
    const blocked = await eventually(async () => (await c.store.queryEvents({ type: 'usb.storage.blocked', limit: 10 })).events[0]);
    expect(blocked.user).toEqual({ name: 'amy', role: 'pupil' });

    await computer.close();
    await c.close();
  });
});

describe('the screen changing hands', () => {
  it('decides a stick again when a pupil takes the screen from a teacher who left it plugged in', async () => {
    // Arrange: Ben (staff) at the screen, under whose role a plain stick works.
    const c = await startTestCollector({ policy: POLICY });
    const rig = linuxRig();
    const { logind } = rig;
    const amy = readRecording('linux/amy-desktop').output;
    writeFileSync(join(logind, '3'), amy.replace('UID=1000', 'UID=1001').replace('USER=amy', 'USER=ben'));
    rmSync(join(logind, '7'));
    const computer = await schoolComputer(c, rig);
    computer.plug();
    const allowed = await eventually(async () => (await c.store.queryEvents({ type: 'usb.storage.allowed', limit: 10 })).events[0]);
    expect(allowed.user).toEqual({ name: 'ben', role: 'staff' });

    // Act: he signs out and Amy signs in, the stick still in.
    rmSync(join(logind, '3'));
    writeFileSync(join(logind, '4'), amy);

    // Assert: within a session poll it is stopped, and the block is hers.
    const blocked = await eventually(async () => (await c.store.queryEvents({ type: 'usb.storage.blocked', limit: 10 })).events[0]);
    expect(blocked.user).toEqual({ name: 'amy', role: 'pupil' });
    await computer.close();
    await c.close();
  });
});
