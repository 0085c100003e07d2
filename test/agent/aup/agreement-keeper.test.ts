import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgreementKeeper, agreementNoticeId } from '../../../agent/aup/agreement-keeper';
import type { EventDraft } from '../../../agent/core/events';
import type { SessionControl, SessionRef } from '../../../agent/sessions/session-control';
import { LogindSessions } from '../../../agent/sessions/session-directory';
import type { Policy } from '../../../shared/policy/schema';
import { preset } from '../../../shared/policy/presets';
import type { TrayNotice } from '../../../shared/protocol';
import { tempDir } from '../../support/cli';
import { silentLogger } from '../../support/harness';

const AMY = 1000;
const BEN = 1001;

/** Amy at a lab PC's desktop (session 3) and Ben on another desktop (session 5), in logind's own file format. */
function signedIn(dir: string): LogindSessions {
  writeFileSync(join(dir, '3'), `UID=${AMY}\nUSER=amy\nACTIVE=1\nREMOTE=0\nTYPE=x11\nCLASS=user\n`);
  writeFileSync(join(dir, '5'), `UID=${BEN}\nUSER=ben\nACTIVE=0\nREMOTE=0\nTYPE=wayland\nCLASS=user\n`);
  return new LogindSessions(dir);
}

/**
 * Everything around the keeper is real (its state file, logind's session
 * files) but the notices it puts up, the events it records and the sign-out,
 * which cannot be carried out on this machine: CommandSessionControl's own
 * test checks the command it would run.
 */
function setUp(policy: Policy, dataDir = tempDir('aup')) {
  let current = policy;
  const shown: Array<{ uid: number; notice: TrayNotice }> = [];
  const withdrawn: string[] = [];
  const events: EventDraft[] = [];
  const signedOut: SessionRef[] = [];
  const control: SessionControl = { signOut: async (s) => void signedOut.push(s) };
  const keeper = new AgreementKeeper({
    dataDir,
    policy: () => current,
    notices: { showTo: (uid, notice) => shown.push({ uid, notice }), withdraw: (id) => withdrawn.push(id) },
    record: async (e) => void events.push(e),
    sessions: signedIn(tempDir('logind')),
    control,
    logger: silentLogger(),
    now: () => new Date('2026-11-23T08:30:00.000Z'),
  });
  return { keeper, shown, withdrawn, events, signedOut, dataDir, setPolicy: (p: Policy) => (current = p) };
}

const answer = (noticeId: string, action: 'agree' | 'decline') => ({ v: 1 as const, type: 'tray.answer' as const, noticeId, action });

describe('the acceptable-use agreement', () => {
  const basildon = preset('basildon-primary')!; // declining signs out
  const carrington = preset('carrington-infant')!; // declining is reported

  it("is put to a user at first login, in the school's own words, and remembered once agreed", async () => {
    // Arrange
    const t = setUp(basildon);
    await t.keeper.load();

    // Act: Amy's tray says hello
    await t.keeper.onHello({ uid: AMY, sessionId: '3' });

    // Assert: the agreement is up for Amy only, with the summary, the clause, and what "no" does
    expect(t.shown).toHaveLength(1);
    const { uid, notice } = t.shown[0]!;
    expect(uid).toBe(AMY);
    expect(notice).toMatchObject({ kind: 'aup-agreement', actions: ['agree', 'decline'], clause: { id: 'bps-monitoring' } });
    expect(notice.body).toContain(basildon.aup.summary);
    expect(notice.body).toContain('you will be signed out');

    // Act: she agrees
    expect(await t.keeper.answer(answer(notice.noticeId, 'agree'), { uid: AMY, sessionId: '3' })).toEqual({ ok: true });

    // Assert: who, which version, when; the window goes; the next login asks nothing
    expect(t.events).toEqual([
      {
        type: 'aup.agreed',
        severity: 'info',
        time: '2026-11-23T08:30:00.000Z',
        data: { sessionId: '3', user: 'amy', uid: AMY, policyId: 'basildon-primary', version: 1 },
      },
    ]);
    expect(t.withdrawn).toEqual([notice.noticeId]);
    const again = setUp(basildon, t.dataDir);
    await again.keeper.load();
    await again.keeper.onHello({ uid: AMY, sessionId: '9' });
    expect(again.shown).toEqual([]);
    expect(JSON.parse(readFileSync(join(t.dataDir, 'aup-agreements.json'), 'utf8')).agreements).toEqual([
      { uid: AMY, user: 'amy', policyId: 'basildon-primary', revision: 1, decision: 'agreed', sessionId: '3', at: '2026-11-23T08:30:00.000Z' },
    ]);
  });

  it('is asked again of everyone signed in when the policy gets a new revision', async () => {
    const t = setUp(basildon);
    await t.keeper.load();
    await t.keeper.onHello({ uid: AMY, sessionId: '3' });
    await t.keeper.answer(answer(agreementNoticeId(basildon, AMY), 'agree'), { uid: AMY, sessionId: '3' });
    t.shown.length = 0;

    t.setPolicy({ ...basildon, revision: 2 });
    await t.keeper.onPolicyChanged();

    expect(t.shown.map((s) => [s.uid, s.notice.noticeId])).toEqual([
      [AMY, agreementNoticeId({ ...basildon, revision: 2 }, AMY)],
      [BEN, agreementNoticeId({ ...basildon, revision: 2 }, BEN)],
    ]);
  });

  it('signs out a user who declines, where the policy says so, and records both', async () => {
    const t = setUp(basildon);
    await t.keeper.load();
    await t.keeper.onHello({ uid: AMY, sessionId: '3' });

    await t.keeper.answer(answer(agreementNoticeId(basildon, AMY), 'decline'), { uid: AMY, sessionId: '3' });

    expect(t.signedOut).toEqual([{ sessionId: '3', uid: AMY }]);
    expect(t.events.map((e) => [e.type, e.data])).toEqual([
      ['aup.declined', { sessionId: '3', user: 'amy', uid: AMY, policyId: 'basildon-primary', version: 1, signedOut: true }],
      ['session.logoff', { sessionId: '3', reason: 'aup-declined', confirmed: true }],
    ]);
  });

  it('only reports a refusal where the policy says so, and asks again at the next login', async () => {
    const t = setUp(carrington);
    await t.keeper.load();
    await t.keeper.onHello({ uid: BEN, sessionId: '5' });

    await t.keeper.answer(answer(agreementNoticeId(carrington, BEN), 'decline'), { uid: BEN, sessionId: '5' });
    t.shown.length = 0;
    await t.keeper.onHello({ uid: BEN, sessionId: '5' }); // the same session: the tray restarted
    await t.keeper.onHello({ uid: BEN, sessionId: '8' }); // a new login

    expect(t.signedOut).toEqual([]);
    expect(t.events.map((e) => e.type)).toEqual(['aup.declined']);
    expect(t.events[0]!.data).toMatchObject({ signedOut: false });
    expect(t.shown.map((s) => s.uid)).toEqual([BEN]);
  });

  it("does not let one user answer another's agreement, or answer it with anything but agree or decline", async () => {
    const t = setUp(basildon);
    await t.keeper.load();
    await t.keeper.onHello({ uid: AMY, sessionId: '3' });
    const amys = agreementNoticeId(basildon, AMY);

    expect(await t.keeper.answer(answer(amys, 'agree'), { uid: BEN, sessionId: '5' })).toMatchObject({ ok: false, code: 'INV_ERR_PERMISSION_NOT_FOUND' });
    expect(await t.keeper.answer({ ...answer(amys, 'agree'), action: 'still-here' } as never, { uid: AMY })).toMatchObject({
      ok: false,
      code: 'INV_ERR_UNEXPECTED_MESSAGE',
    });
    expect(await t.keeper.answer(answer(amys, 'agree'), {})).toMatchObject({ ok: false });
    expect(t.events).toEqual([]);
  });

  it('asks nothing when the policy does not require an agreement', async () => {
    const t = setUp({ ...basildon, aup: { ...basildon.aup, required: false } });
    await t.keeper.load();
    await t.keeper.onHello({ uid: AMY, sessionId: '3' });
    expect(t.shown).toEqual([]);
  });
});
