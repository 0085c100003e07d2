import type { EventDraft } from '../../../agent/core/events';
import { ProblemReports, REPORT_RATE } from '../../../agent/tray/problem-reports';
import type { NoticeSink } from '../../../agent/core/notices';
import { preset } from '../../../shared/policy/presets';
import { type TrayNotice, eventEnvelope } from '../../../shared/protocol';
import { validate } from '../../../shared/schema';
import { silentLogger } from '../../support/harness';

const AMY = { uid: 1000, sessionId: '3' };
const BEN = { uid: 1001, sessionId: '5' };
const basildon = preset('basildon-primary')!;

/** The rules for reports over a recording `record` and a notice sink, on a fake clock. */
function desk(start = Date.parse('2026-11-23T09:00:00.000Z')) {
  const clock = { now: start };
  const events: EventDraft[] = [];
  const shown: TrayNotice[] = [];
  const sink: NoticeSink = { show: (n) => shown.push(n), withdraw: () => undefined };
  const reports = new ProblemReports({
    record: async (e) => void events.push(e),
    policy: () => basildon,
    notices: () => sink,
    systemDetails: (from) => `computer: lab-pc-7\nreported from the tray of uid ${from.uid}`,
    logger: silentLogger(),
    now: () => clock.now,
  });
  const reported = () => events.filter((e) => e.type === 'problem.reported');
  return { clock, events, shown, reports, reported, passes: (ms: number) => void (clock.now += ms) };
}

const valid = (e: EventDraft) => validate(eventEnvelope, { ...e, id: '00000000-0000-4000-8000-000000000000', seq: 1, deviceId: 'dev-1' }).ok;

describe('problem reports from the tray', () => {
  it('records a flood of 1,000 virus reports from one pupil as the first few, counts the rest, and warns the room once', async () => {
    // Arrange
    const d = desk();

    // Act: Ben's tray sends 1,000 reports, each worded differently
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => d.reports.take({ kind: 'virus', text: `virus number ${i}` }, BEN)));

    // Assert: the burst is recorded, the rest throttled; one warning on screen; one refusal in plain words to Ben alone
    expect(d.reported()).toHaveLength(REPORT_RATE.burst);
    expect(d.reported()[0]).toMatchObject({ severity: 'alert', data: { kind: 'virus', text: 'virus number 0' } });
    expect(results.filter((r) => r.outcome === 'recorded')).toHaveLength(REPORT_RATE.burst);
    expect(results.filter((r) => r.outcome === 'throttled')).toHaveLength(1000 - REPORT_RATE.burst);
    expect(d.shown.filter((n) => n.kind === 'virus-warning')).toHaveLength(1);
    const refusals = results.flatMap((r) => (r.notice ? [r.notice] : []));
    expect(refusals).toEqual([
      expect.objectContaining({ kind: 'information', title: 'Thank you: that is enough for now', body: expect.stringContaining('a few minutes') }),
    ]);

    // The count is recorded once, as its own event
    await d.reports.flush();
    await d.reports.flush();
    const held = d.events.filter((e) => e.type === 'problem.held-back');
    expect(held).toEqual([
      expect.objectContaining({
        severity: 'notice',
        data: { from: 'the tray of uid 1001, session 5', repeats: 0, throttled: 995, since: '2026-11-23T09:00:00.000Z' },
      }),
    ]);
    for (const e of d.events) expect(valid(e)).toBe(true);
  });

  it("lets another user's report in while one user is throttled", async () => {
    const d = desk();
    for (let i = 0; i < 50; i++) await d.reports.take({ kind: 'broken', text: `spam ${i}` }, BEN);
    expect(await d.reports.take({ kind: 'upsetting', text: 'A scary picture' }, AMY)).toEqual({ outcome: 'recorded' });
    expect(d.reported().at(-1)).toMatchObject({ severity: 'warning', data: { kind: 'upsetting', text: 'A scary picture' } });
  });

  it('counts the same words again as a repeat, without using up the rate', async () => {
    const d = desk();
    expect(await d.reports.take({ kind: 'broken', text: 'The printer says error 5' }, AMY)).toEqual({ outcome: 'recorded' });
    for (const text of ['The printer says error 5', '  the printer   says ERROR 5 ']) {
      expect(await d.reports.take({ kind: 'broken', text }, AMY)).toEqual({ outcome: 'repeat' });
    }
    // Other words, or the same words as another kind, are new reports
    expect(await d.reports.take({ kind: 'virus', text: 'The printer says error 5' }, AMY)).toEqual({ outcome: 'recorded' });
    expect(await d.reports.take({ kind: 'broken', text: 'The screen is black' }, AMY)).toEqual({ outcome: 'recorded' });
    expect(d.reported()).toHaveLength(3);
    await d.reports.flush();
    expect(d.events.find((e) => e.type === 'problem.held-back')).toMatchObject({ data: { repeats: 2, throttled: 0 } });

    // An hour on, the same words are a new report
    d.passes(REPORT_RATE.repeatMinutes * 60_000);
    expect(await d.reports.take({ kind: 'broken', text: 'The printer says error 5' }, AMY)).toEqual({ outcome: 'recorded' });
  });

  it('takes reports again at a few a minute once the burst is spent, and refuses in words once per spell', async () => {
    const d = desk();
    const take = (i: number) => d.reports.take({ kind: 'broken', text: `report ${i}` }, AMY);
    for (let i = 0; i < REPORT_RATE.burst; i++) expect((await take(i)).outcome).toBe('recorded');
    const first = await take(100);
    expect(first.outcome).toBe('throttled');
    expect(first.notice).toBeDefined();
    expect((await take(101)).notice).toBeUndefined();
    d.passes(REPORT_RATE.refillSeconds * 1000);
    expect((await take(102)).outcome).toBe('recorded');
    const again = await take(103);
    expect(again.outcome).toBe('throttled');
    // A new spell of refusals gets its words again
    expect(again.notice).toBeDefined();
  });

  it('puts up the virus warning at most once per period, whoever reports', async () => {
    const d = desk();
    await d.reports.take({ kind: 'virus', text: 'My files are locked' }, AMY);
    await d.reports.take({ kind: 'virus', text: 'A red skull' }, BEN);
    expect(d.shown.filter((n) => n.kind === 'virus-warning')).toHaveLength(1);
    d.passes(REPORT_RATE.virusWarningMinutes * 60_000);
    await d.reports.take({ kind: 'virus', text: 'It is back' }, BEN);
    expect(d.shown.filter((n) => n.kind === 'virus-warning')).toHaveLength(2);
    expect(d.shown[0]).toMatchObject({ clause: { id: 'bps-malware' }, actions: ['dismiss'] });
  });

  it('records nothing held back when nothing was', async () => {
    const d = desk();
    await d.reports.take({ kind: 'broken', text: 'The printer says error 5' }, AMY);
    await d.reports.flush();
    expect(d.events.map((e) => e.type)).toEqual(['problem.reported']);
  });
});
