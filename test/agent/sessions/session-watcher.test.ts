import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdCommandGroups, roleFor } from '../../../agent/sessions/roles';
import { SessionWatcher } from '../../../agent/sessions/session-watcher';
import { LogindSessions } from '../../../agent/sessions/session-directory';
import type { EventDraft } from '../../../agent/core/events';
import { createExecFileRunner } from '../../../agent/os/command-runner';
import { preset } from '../../../shared/policy/presets';
import { tempDir } from '../../support/cli';
import { silentLogger } from '../../support/harness';

const desktop = (uid: number, user: string) => `UID=${uid}\nUSER=${user}\nACTIVE=1\nREMOTE=0\nTYPE=x11\nCLASS=user\n`;

describe('which role a user has', () => {
  const basildon = preset('basildon-primary')!;

  it("is the first of the policy's roles naming one of the user's groups, without regard to case, else the default", () => {
    expect(roleFor(basildon, ['amy', 'Pupils'])).toBe('pupil');
    expect(roleFor(basildon, ['pupils', 'TEACHERS'])).toBe('staff'); // staff is listed first
    expect(roleFor(basildon, ['domain admins'])).toBe('staff');
    expect(roleFor(basildon, ['nobody-special'])).toBe(basildon.roles.default);
  });

  it("asks the OS for a user's groups with id, and gives none for a name id cannot take", async () => {
    const groups = new IdCommandGroups(createExecFileRunner());
    expect(await groups.groupsOf('root')).toContain('root');
    expect(await groups.groupsOf('no-such-user-here')).toEqual([]);
    expect(await groups.groupsOf('-a')).toEqual([]);
    expect(await groups.groupsOf('amy; rm -rf /')).toEqual([]);
  });
});

describe('sessions coming and going', () => {
  function setUp(dataDir = tempDir('watcher'), logind = tempDir('logind')) {
    const events: EventDraft[] = [];
    const started: string[] = [];
    const ended: string[] = [];
    const locked = new Set<string>();
    const watcher = new SessionWatcher({
      directory: new LogindSessions(logind),
      dataDir,
      record: async (e) => void events.push(e),
      roleOf: async (s) => (s.user === 'mr.jones' ? 'staff' : 'pupil'),
      locks: { isLocked: async (s) => locked.has(s.sessionId) },
      onStarted: async (s, role) => void started.push(`${s.sessionId}:${role}`),
      onEnded: async (id) => void ended.push(id),
      logger: silentLogger(),
      now: () => new Date('2026-11-23T09:00:00.000Z'),
    });
    return { watcher, events, started, ended, locked, dataDir, logind };
  }

  it('reports logins with their role, locks, unlocks and logouts, each once', async () => {
    const t = setUp();
    writeFileSync(join(t.logind, '3'), desktop(1000, 'amy.p'));
    await t.watcher.poll();
    await t.watcher.poll();
    t.locked.add('3');
    await t.watcher.poll();
    t.locked.delete('3');
    writeFileSync(join(t.logind, '4'), desktop(1002, 'mr.jones'));
    await t.watcher.poll();
    rmSync(join(t.logind, '3'));
    await t.watcher.poll();

    expect(t.events.map((e) => [e.type, e.data])).toEqual([
      ['session.started', { sessionId: '3', user: 'amy.p', role: 'pupil' }],
      ['session.locked', { sessionId: '3', user: 'amy.p' }],
      ['session.unlocked', { sessionId: '3', user: 'amy.p' }],
      ['session.started', { sessionId: '4', user: 'mr.jones', role: 'staff' }],
      ['session.ended', { sessionId: '3', user: 'amy.p' }],
    ]);
    expect(t.started).toEqual(['3:pupil', '4:staff']);
    expect(t.ended).toEqual(['3']);
  });

  it('after a restart, reports neither a session twice nor misses one that ended while it was down, and claims again for those still there', async () => {
    const first = setUp();
    writeFileSync(join(first.logind, '3'), desktop(1000, 'amy.p'));
    writeFileSync(join(first.logind, '5'), desktop(1001, 'ben.k'));
    await first.watcher.poll();

    // The agent stops; Ben signs out meanwhile; the agent starts again.
    rmSync(join(first.logind, '5'));
    const again = setUp(first.dataDir, first.logind);
    await again.watcher.poll();

    expect(again.events.map((e) => [e.type, e.data])).toEqual([['session.ended', { sessionId: '5', user: 'ben.k' }]]);
    expect(again.started).toEqual(['3:pupil']);
  });

  it('treats a reused session id with another user as a new session (logind numbers again after a reboot)', async () => {
    const t = setUp();
    writeFileSync(join(t.logind, '3'), desktop(1000, 'amy.p'));
    await t.watcher.poll();
    writeFileSync(join(t.logind, '3'), desktop(1001, 'ben.k'));
    await t.watcher.poll();
    expect(t.events.map((e) => e.type)).toEqual(['session.started', 'session.ended', 'session.started']);
    expect(t.events[2]!.data).toMatchObject({ user: 'ben.k' });
  });
});
