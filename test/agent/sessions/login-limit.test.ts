import { LoginLimit, type LoginLink } from '../../../agent/sessions/login-limit';
import type { SessionRef } from '../../../agent/sessions/session-control';
import type { UserSession } from '../../../agent/sessions/session-directory';
import type { EventDraft } from '../../../agent/core/events';
import { preset } from '../../../shared/policy/presets';
import type { Policy } from '../../../shared/policy/schema';
import type { TrayNotice } from '../../../shared/protocol';
import { silentLogger } from '../../support/harness';

const AMY: UserSession = { sessionId: '3', uid: 1000, user: 'amy.p', active: true, remote: false, kind: 'graphical' };
/** Amy's other computers as a refused verdict names them: no device or session ids, a reference each. */
const LIBRARY = { hostname: 'LIBRARY-07', since: '2026-11-23T08:50:00.000Z', ref: 'ev-library-ref' };
const ART = { hostname: 'ART-02', since: '2026-11-23T08:55:00.000Z', ref: 'ev-art-ref' };

/**
 * The login limit with everything around it recorded: the messages to the
 * collector, the notices, the events and the sign-outs (which cannot happen
 * on this machine), and a clock the test moves.
 */
function setUp(policy: Policy = preset('basildon-primary')!, linkUp = true) {
  const clock = { now: Date.parse('2026-11-23T09:00:00.000Z') };
  const sent: Array<Record<string, unknown>> = [];
  const link: LoginLink & { ready: boolean } = { ready: linkUp, sendLogin: (m) => link.ready && sent.push(m) > 0 };
  const shown: Array<{ uid: number; notice: TrayNotice }> = [];
  const withdrawn: string[] = [];
  const events: EventDraft[] = [];
  const signedOut: SessionRef[] = [];
  let ids = 0;
  const limit = new LoginLimit({
    policy: () => policy,
    link,
    notices: { showTo: (uid, notice) => shown.push({ uid, notice }), withdraw: (id) => withdrawn.push(id) },
    record: async (e) => void events.push(e),
    control: { signOut: async (s) => void signedOut.push(s) },
    logger: silentLogger(),
    now: () => clock.now,
    newId: () => `k-${++ids}`,
  });
  return { limit, link, sent, shown, withdrawn, events, signedOut, clock };
}

/** A granted verdict lists nobody; a refused one the other computers. */
const verdict = (granted: boolean, others: Array<{ hostname: string; since: string; ref?: string }> = granted ? [] : [LIBRARY, ART]) => ({
  v: 1 as const,
  type: 'login.verdict' as const,
  claimId: 'k-1',
  granted,
  limit: 2,
  others,
  leaseSeconds: 300,
});

describe('at most two school devices per login', () => {
  it('claims a lease at login, holds it while the session lasts and gives it back at logout', async () => {
    const t = setUp();

    await t.limit.sessionStarted(AMY, 'pupil');
    await t.limit.onVerdict(verdict(true));
    t.clock.now += 100_000; // a third of the 300 s lease
    await t.limit.tick();
    await t.limit.sessionEnded('3');

    expect(t.sent.map((m) => m.type)).toEqual(['login.claim', 'login.renew', 'login.release']);
    expect(t.sent[0]).toMatchObject({ claimId: 'k-1', user: { name: 'amy.p', osId: '1000' }, sessionId: '3', role: 'pupil' });
    expect(t.sent[1]).toMatchObject({ sessionIds: ['3'] });
    expect(t.events.map((e) => [e.type, e.data])).toEqual([
      ['login-limit.granted', { sessionId: '3', user: 'amy.p', limit: 2 }],
      ['login-limit.released', { sessionId: '3', user: 'amy.p' }],
    ]);
  });

  it('shows a refused user their other computers and signs them out here when they choose nothing in time', async () => {
    const t = setUp();
    await t.limit.sessionStarted(AMY, 'pupil');

    await t.limit.onVerdict(verdict(false));

    // The notice: Amy's only, the other two computers with since when, a deadline two minutes away.
    expect(t.shown).toHaveLength(1);
    expect(t.shown[0]!.uid).toBe(1000);
    expect(t.shown[0]!.notice).toMatchObject({
      kind: 'login-limit',
      actions: ['sign-out-here', 'sign-out-other'],
      sessions: [
        { sessionId: 'other-0', hostname: 'LIBRARY-07', since: LIBRARY.since },
        { sessionId: 'other-1', hostname: 'ART-02', since: ART.since },
      ],
      deadline: '2026-11-23T09:02:00.000Z',
      clause: { id: 'bps-two-devices' },
    });
    // The record names the other computers as Amy saw them, without the collector's references.
    expect(t.events[0]).toEqual({
      type: 'login-limit.denied',
      severity: 'warning',
      time: expect.any(String),
      data: {
        sessionId: '3',
        user: 'amy.p',
        limit: 2,
        others: [
          { hostname: 'LIBRARY-07', since: LIBRARY.since },
          { hostname: 'ART-02', since: ART.since },
        ],
      },
    });

    t.clock.now += 119_000;
    await t.limit.tick();
    expect(t.signedOut).toEqual([]);
    t.clock.now += 1_000;
    await t.limit.tick();
    expect(t.signedOut).toEqual([{ sessionId: '3', uid: 1000 }]);
    expect(t.events[1]).toMatchObject({ type: 'session.logoff', data: { sessionId: '3', reason: 'login-limit', confirmed: true } });
    expect(t.withdrawn).toContain('login-limit-3');
  });

  it('lets the refused user end one of their other sessions instead, and lets them in when the collector agrees', async () => {
    const t = setUp();
    await t.limit.sessionStarted(AMY, 'pupil');
    await t.limit.onVerdict(verdict(false));

    const answer = await t.limit.answer({ v: 1, type: 'tray.answer', noticeId: 'login-limit-3', action: 'sign-out-other', target: 'other-1' }, { uid: 1000 });
    await t.limit.onVerdict(verdict(true));
    t.clock.now += 600_000;
    await t.limit.tick();

    expect(answer).toEqual({ ok: true });
    expect(t.sent[1]).toEqual({
      v: 1,
      type: 'login.evict',
      claimId: 'k-1',
      user: { name: 'amy.p', osId: '1000', role: 'pupil' },
      sessionId: '3',
      role: 'pupil',
      at: expect.any(String),
      ref: 'ev-art-ref',
    });
    expect(t.withdrawn).toContain('login-limit-3');
    expect(t.signedOut).toEqual([]);
    expect(t.limit.states()).toEqual([{ sessionId: '3', state: 'granted' }]);
  });

  it('takes the choice only from the refused user, about a session the notice offered', async () => {
    const t = setUp();
    await t.limit.sessionStarted(AMY, 'pupil');
    await t.limit.onVerdict(verdict(false));

    const fromBen = await t.limit.answer({ v: 1, type: 'tray.answer', noticeId: 'login-limit-3', action: 'sign-out-here' }, { uid: 1001 });
    const unknown = await t.limit.answer({ v: 1, type: 'tray.answer', noticeId: 'login-limit-3', action: 'sign-out-other', target: 'other-7' }, { uid: 1000 });

    expect(fromBen).toMatchObject({ ok: false, code: 'INV_ERR_SESSION_UNKNOWN' });
    expect(unknown).toMatchObject({ ok: false, code: 'INV_ERR_SESSION_UNKNOWN' });
    expect(t.signedOut).toEqual([]);
    expect(t.sent.map((m) => m.type)).toEqual(['login.claim']);
  });

  it('offers no other session to sign out when the verdict gave no references', async () => {
    const t = setUp();
    await t.limit.sessionStarted(AMY, 'pupil');
    await t.limit.onVerdict(verdict(false, [{ hostname: 'LIBRARY-07', since: LIBRARY.since }]));

    expect(t.shown[0]!.notice).toMatchObject({ actions: ['sign-out-here'], sessions: [{ sessionId: 'other-0', hostname: 'LIBRARY-07' }] });
    const answer = await t.limit.answer({ v: 1, type: 'tray.answer', noticeId: 'login-limit-3', action: 'sign-out-other', target: 'other-0' }, { uid: 1000 });
    expect(answer).toMatchObject({ ok: false, code: 'INV_ERR_SESSION_UNKNOWN' });
    expect(t.sent.map((m) => m.type)).toEqual(['login.claim']);
  });

  it('signs out here at once when the user chooses so', async () => {
    const t = setUp();
    await t.limit.sessionStarted(AMY, 'pupil');
    await t.limit.onVerdict(verdict(false));
    await t.limit.answer({ v: 1, type: 'tray.answer', noticeId: 'login-limit-3', action: 'sign-out-here' }, { uid: 1000 });
    expect(t.signedOut).toEqual([{ sessionId: '3', uid: 1000 }]);
  });

  it('allows a login while the collector is unreachable and settles it by the same rule when it is back (allow-and-reconcile)', async () => {
    const t = setUp(preset('basildon-primary')!, false);

    await t.limit.sessionStarted(AMY, 'pupil');
    expect(t.limit.states()).toEqual([{ sessionId: '3', state: 'unverified' }]);
    expect(t.shown).toEqual([]);

    t.link.ready = true;
    t.limit.onLinkReady();
    expect(t.sent[0]).toMatchObject({ type: 'login.claim', claimId: 'k-1', sessionId: '3' });
    await t.limit.onVerdict(verdict(false));
    expect(t.shown[0]!.notice.kind).toBe('login-limit');
  });

  it('refuses a login it cannot check where the policy says refuse, and lets it stay if the collector comes back and agrees', async () => {
    const basildon = preset('basildon-primary')!;
    const strict: Policy = { ...basildon, loginLimit: { default: { ...basildon.loginLimit.default, offline: 'refuse' } } };
    const t = setUp(strict, false);

    await t.limit.sessionStarted(AMY, 'pupil');
    expect(t.shown[0]!.notice).toMatchObject({ kind: 'login-limit', title: 'Your sign-in cannot be checked', actions: ['sign-out-here'] });
    expect(t.events[0]).toMatchObject({ type: 'login-limit.denied', data: { others: [] } });

    t.link.ready = true;
    t.limit.onLinkReady();
    await t.limit.onVerdict(verdict(true, []));
    t.clock.now += 600_000;
    await t.limit.tick();
    expect(t.signedOut).toEqual([]);
    expect(t.limit.states()).toEqual([{ sessionId: '3', state: 'granted' }]);
  });

  it('treats a claim whose verdict never came (the link dropped) as made offline', async () => {
    const t = setUp();
    await t.limit.sessionStarted(AMY, 'pupil');
    t.clock.now += 30_000;
    await t.limit.tick();
    expect(t.limit.states()).toEqual([{ sessionId: '3', state: 'unverified' }]);
  });

  it('claims again every session after a reconnect, so a lease that expired during the outage is restored or refused by the same rule', async () => {
    const t = setUp();
    await t.limit.sessionStarted(AMY, 'pupil');
    await t.limit.onVerdict(verdict(true));

    t.limit.onLinkReady();
    await t.limit.onVerdict(verdict(true));
    expect(t.sent.map((m) => m.type)).toEqual(['login.claim', 'login.claim']);
    expect(t.events.map((e) => e.type)).toEqual(['login-limit.granted']);

    // Meanwhile two other computers took her places: the re-claim is refused.
    t.limit.onLinkReady();
    await t.limit.onVerdict(verdict(false));
    expect(t.events.map((e) => e.type)).toEqual(['login-limit.granted', 'login-limit.denied']);
    expect(t.shown[0]!.notice.kind).toBe('login-limit');
  });
});
