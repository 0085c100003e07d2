import type { RunningAgent } from '../../agent/agent';
import type { NoticeSink } from '../../agent/core/notices';
import type { TrayNotice } from '../../shared/protocol';
import { eventually, tempDir } from '../support/cli';
import { allEvents } from '../support/delivery-checks';
import { ImageMaker } from '../support/disk-images';
import { type TestCollector, startTestAgent, startTestCollector } from '../support/harness';
import { SysfsFixture } from '../support/sysfs-fixture';
import { fixtureDevices, linuxPlatformOn } from '../support/usb-devices';

const DEVICES = fixtureDevices(new ImageMaker(tempDir('e2e-usb-images')));
const STICK = DEVICES['plain-stick'];

/** The tray's side of the contract, as the person at the computer would use it. */
class NoticeBoard implements NoticeSink {
  readonly shown: TrayNotice[] = [];
  readonly withdrawn: string[] = [];
  show(notice: TrayNotice): void {
    this.shown.push(notice);
  }
  withdraw(noticeId: string): void {
    this.withdrawn.push(noticeId);
  }
  latest(kind: TrayNotice['kind']): TrayNotice | undefined {
    return [...this.shown].reverse().find((n) => n.kind === kind);
  }
}

interface Computer {
  agent: RunningAgent;
  fixture: SysfsFixture;
  notices: NoticeBoard;
  deviceId: string;
}

async function startComputer(c: TestCollector): Promise<Computer> {
  const fixture = new SysfsFixture();
  const notices = new NoticeBoard();
  const agent = await startTestAgent(c.agentUrl, await c.enrollmentToken(), tempDir('usb-agent'), { backoffBaseMs: 20, backoffCapMs: 200 }, undefined, {
    usb: { platform: linuxPlatformOn(fixture, []), control: 'enforce' },
    notices,
  });
  const deviceId = await eventually(async () => (await c.store.listDevices()).find((d) => d.hostname && d.lastSeq > 0 && !known.has(d.id))?.id);
  known.add(deviceId);
  return { agent, fixture, notices, deviceId };
}
const known = new Set<string>();

async function api(c: TestCollector, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${c.httpUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${c.adminToken}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function eventsOf(c: TestCollector, deviceId: string, type: string) {
  return (await allEvents(c.store, deviceId)).filter((e) => e.type === type);
}

describe('a blocked stick, a request, an approval and an offline code, end to end on loopback', () => {
  let c: TestCollector;
  let one: Computer;
  let two: Computer;

  beforeAll(async () => {
    c = await startTestCollector();
    one = await startComputer(c);
    two = await startComputer(c);
  });
  afterAll(async () => {
    for (const computer of [one, two]) {
      await computer.agent.stop('test over');
      computer.fixture.close();
    }
    await c.close();
  });

  it('blocks a plain stick, tells the collector with its serial and the clause, and shows a notice that lets the pupil ask', async () => {
    one.fixture.plug(STICK.port, STICK.device);
    const blocked = await eventually(async () => (await eventsOf(c, one.deviceId, 'usb.storage.blocked'))[0]);
    expect(blocked).toMatchObject({
      severity: 'alert',
      data: { reason: 'unencrypted', device: { vendorId: '0781', productId: '5567', serial: '4C530001230101110453' } },
      clause: { id: 'bps-connections-encrypted' },
    });
    expect(one.fixture.authorized(STICK.port)).toBe('0');
    const notice = one.notices.latest('usb-blocked')!;
    expect(notice.actions).toEqual(['dismiss', 'ask-permission', 'enter-code']);
    expect(notice.clause?.quote).toMatch(/Encrypted USB memory sticks/);
  });

  it('carries the request to the network manager, whose approval becomes an allowlist entry on that computer', async () => {
    const notice = one.notices.latest('usb-blocked')!;
    expect(await one.agent.usb!.answer(notice.noticeId, 'ask-permission', 'My art project is on it')).toEqual({ ok: true });
    const listed = await eventually(async () => {
      const { json } = await api(c, `/api/permission-requests?status=pending&device=${one.deviceId}`);
      return (json.requests as Array<{ requestId: string; reason: string }>)[0];
    });
    expect(listed.reason).toBe('My art project is on it');

    const expiresAt = new Date(Date.now() + 7 * 86_400_000).toISOString();
    const decided = await api(c, `/api/permission-requests/${one.deviceId}/${listed.requestId}/decision`, {
      decision: 'approved',
      expiresAt,
      note: 'Fine for this week',
    });
    expect(decided.status).toBe(200);

    await eventually(() => (one.agent.usb!.allowlist.length > 0 ? true : undefined));
    expect(one.agent.usb!.allowlist[0]).toMatchObject({
      vendorId: '0781',
      productId: '5567',
      serial: '4C530001230101110453',
      devices: [one.deviceId],
      expiresAt,
    });
    const told = await eventually(() => one.notices.latest('permission-decision'));
    expect(told.title).toBe('You can use it now');
  });

  it('lets the stick still plugged in work at once, and allows it again when it is plugged in again', async () => {
    const atOnce = await eventually(async () => (await eventsOf(c, one.deviceId, 'usb.storage.allowed'))[0]);
    expect(atOnce).toMatchObject({ data: { allowlisted: true, exception: { kind: 'allowlist' }, device: { serial: '4C530001230101110453' } } });
    expect(one.fixture.authorized(STICK.port)).toBe('1');

    one.fixture.unplug(STICK.port);
    await eventually(async () => (await eventsOf(c, one.deviceId, 'usb.removed'))[0]);
    one.fixture.plug(STICK.port, STICK.device);
    const again = await eventually(async () => (await eventsOf(c, one.deviceId, 'usb.storage.allowed'))[1]);
    expect(again).toMatchObject({ data: { allowlisted: true, exception: { kind: 'allowlist' } } });
    expect(one.fixture.authorized(STICK.port)).toBe('1');
  });

  it('still blocks that stick on the other computer, where an offline code lets it in once and only there', async () => {
    two.fixture.plug(STICK.port, STICK.device);
    await eventually(async () => (await eventsOf(c, two.deviceId, 'usb.storage.blocked'))[0]);
    const minted = await api(c, `/api/devices/${two.deviceId}/offline-codes`, {
      vendorId: '0781',
      productId: '5567',
      serial: '4C530001230101110453',
      validMinutes: 60,
    });
    expect(minted.status).toBe(201);
    const code = minted.json.code as string;

    // Typed on the wrong computer it does nothing.
    const wrongNotice = one.notices.latest('usb-blocked')!;
    one.fixture.unplug(STICK.port);

    const notice = two.notices.latest('usb-blocked')!;
    expect(await two.agent.usb!.answer(notice.noticeId, 'enter-code', undefined, code)).toEqual({ ok: true });
    const allowed = await eventually(async () => (await eventsOf(c, two.deviceId, 'usb.storage.allowed'))[0]);
    expect(allowed).toMatchObject({ data: { exception: { kind: 'offline-code' } } });
    expect(two.fixture.authorized(STICK.port)).toBe('1');

    // Once only: pulled out and put back, it is blocked again and the code is spent.
    two.fixture.unplug(STICK.port);
    two.fixture.plug(STICK.port, STICK.device);
    await eventually(async () => ((await eventsOf(c, two.deviceId, 'usb.storage.blocked')).length === 2 ? true : undefined));
    const again = two.notices.latest('usb-blocked')!;
    expect(await two.agent.usb!.answer(again.noticeId, 'enter-code', undefined, code)).toMatchObject({ ok: false, code: 'INV_ERR_OFFLINE_CODE_USED' });
    expect(wrongNotice.noticeId).not.toBe(again.noticeId);
  });

  it('refuses the code on another computer for the same stick', async () => {
    one.fixture.plug(STICK.port, { ...STICK.device, serial: 'OTHERSERIAL01' });
    await eventually(async () => ((await eventsOf(c, one.deviceId, 'usb.storage.blocked')).length === 2 ? true : undefined));
    const minted = await api(c, `/api/devices/${two.deviceId}/offline-codes`, {
      vendorId: '0781',
      productId: '5567',
      serial: 'OTHERSERIAL01',
      validMinutes: 60,
    });
    const notice = one.notices.latest('usb-blocked')!;
    expect(await one.agent.usb!.answer(notice.noticeId, 'enter-code', undefined, minted.json.code as string)).toMatchObject({
      ok: false,
      code: 'INV_ERR_OFFLINE_CODE_INVALID',
    });
    expect(one.fixture.authorized(STICK.port)).toBe('0');
    const rejected = await eventually(async () => (await eventsOf(c, one.deviceId, 'usb.offline-code.rejected'))[0]);
    expect(rejected).toMatchObject({ data: { code: 'INV_ERR_OFFLINE_CODE_INVALID' } });
  });
  it('stores hostile descriptor strings as plain, short text and serves them only as JSON', async () => {
    const hostile = DEVICES['hostile-strings'];
    one.fixture.plug(hostile.port, hostile.device);
    const stored = await eventually(async () =>
      (await eventsOf(c, one.deviceId, 'usb.connected')).find((e) => (e.data as { device: { vendorId: string } }).device.vendorId === '1234'),
    );
    const product = (stored.data as { device: { product: string } }).device.product;
    expect(product.length).toBeLessThanOrEqual(126);
    const res = await fetch(`${c.httpUrl}/api/events?device=${one.deviceId}&type=usb.connected`, { headers: { authorization: `Bearer ${c.adminToken}` } });
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const text = await res.text();
    // eslint-disable-next-line no-control-regex
    expect(text).not.toMatch(/[\u0000-\u001f\u202e]/);
    expect(text).toContain('<script>alert(1)</script>AAAA');
  });
});
