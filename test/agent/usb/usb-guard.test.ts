import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { EventDraft } from '../../../agent/core/events';
import type { NoticeSink } from '../../../agent/core/notices';
import { PERMISSION_REQUEST_LIMITS, UsbGuard } from '../../../agent/usb/usb-guard';
import { issueOfflineCode } from '../../../node-common/offline-code';
import { keyedEntryFor } from '../../../collector/usb-allow-for-all';
import { preset } from '../../../shared/policy/presets';
import type { Policy } from '../../../shared/policy/schema';
import type { TrayNotice } from '../../../shared/protocol';
import { validate } from '../../../shared/schema';
import { eventEnvelope } from '../../../shared/protocol';
import { silentLogger } from '../../support/harness';
import { tempDir } from '../../support/cli';
import { ImageMaker } from '../../support/disk-images';
import { SysfsFixture } from '../../support/sysfs-fixture';
import { fixtureDevices, linuxPlatformOn } from '../../support/usb-devices';

const images = new ImageMaker(tempDir('guard-images'));
const DEVICES = fixtureDevices(images);
const BITLOCKER_TO_GO = images.bitlocker('bitlocker-togo.img', 'togo');
/** An ordinary MBR stick with a FAT partition, with a LUKS header written over its first bytes: the kernel still mounts the FAT partition. */
const DISGUISED = (() => {
  const path = images.partitioned('disguised.img', 'dos', [{ image: images.fat('inner-fat.img', 34, 32), type: 'c' }]);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe, 0x00, 0x02]), 0, 8, 0);
  closeSync(fd);
  return path;
})();
const MIXED = images.partitioned('mixed.img', 'dos', [
  { image: images.luks('part-luks.img', 'luks2'), type: '83' },
  { image: images.fat('part-fat.img', 34, 32), type: 'c' },
]);

/** Arrange: a Linux machine (the sysfs fixture) with the real adapter, the guard and a policy; act by plugging; assert on writes and events. */
async function machine(
  policy: Policy | (() => Policy),
  options: {
    control?: 'enforce' | 'observe';
    before?: (f: SysfsFixture) => void;
    clock?: { now: number };
    bindDelayMs?: number;
    dataDir?: string;
    sendPermissionRequest?: (request: unknown) => boolean;
    identity?: { deviceId: string; secret: Buffer };
  } = {},
) {
  const fixture = new SysfsFixture();
  fixture.bindDelayMs = options.bindDelayMs ?? 0;
  options.before?.(fixture);
  const commands: string[] = [];
  const events: EventDraft[] = [];
  const notices: TrayNotice[] = [];
  const sink: NoticeSink = { show: (n) => notices.push(n), withdraw: () => undefined };
  const guard = new UsbGuard({
    platform: linuxPlatformOn(fixture, commands),
    policy: typeof policy === 'function' ? policy : () => policy,
    ...(options.clock ? { now: () => options.clock!.now } : {}),
    currentUser: () => ({ name: 'amy.p', role: 'pupil' }),
    record: async (e) => {
      events.push(e);
    },
    notices: sink,
    sendPermissionRequest: options.sendPermissionRequest ?? (() => false),
    deviceIdentity: async () => options.identity,
    dataDir: options.dataDir ?? tempDir('guard'),
    logger: silentLogger(),
    control: options.control ?? 'enforce',
  });
  await guard.start();
  await guard.settled();
  const plug = async (name: keyof typeof DEVICES, override: Partial<(typeof DEVICES)['plain-stick']['device']> = {}, port = DEVICES[name].port) => {
    fixture.plug(port, { ...DEVICES[name].device, ...override });
    for (let i = 0; i < 1000 && !events.some((e) => e.type === 'usb.connected' && (e.data as { device: { port?: string } }).device.port === port); i++) {
      await new Promise((r) => setTimeout(r, 5));
      await guard.settled();
    }
    await guard.settled();
  };
  const types = () => events.map((e) => e.type);
  const close = async () => {
    await guard.stop();
    fixture.close();
  };
  return { fixture, guard, commands, events, notices, plug, types, close };
}

const basildon = preset('basildon-primary')!;
const carrington = preset('carrington-infant')!;

describe('the USB guard on Linux', () => {
  it('under basildon-primary: reads a plain stick, then de-authorises it; every event is valid and cites the clause', async () => {
    const m = await machine(basildon);
    await m.plug('plain-stick');
    expect(m.fixture.writes).toEqual(['authorized_default=0', '1-1/authorized=1', '1-1/authorized=0']);
    expect(m.types()).toEqual(['usb.connected', 'usb.storage.blocked']);
    const blocked = m.events[1]!;
    expect(blocked).toMatchObject({
      severity: 'alert',
      data: { reason: 'unencrypted', volumes: [{ encrypted: false, filesystem: 'vfat' }] },
      clause: { id: 'bps-connections-encrypted' },
    });
    for (const e of m.events) expect(validate(eventEnvelope, { ...e, id: '00000000-0000-4000-8000-000000000000', seq: 1, deviceId: 'dev-1' }).ok).toBe(true);
    expect(m.notices[0]).toMatchObject({ kind: 'usb-blocked', title: 'This memory stick is not locked', actions: ['dismiss', 'ask-permission', 'enter-code'] });
    await m.close();
  });

  it('under basildon-primary: allows LUKS2 and BitLocker To Go sticks and blocks a stick with one LUKS and one FAT partition', async () => {
    const m = await machine(basildon);
    await m.plug('encrypted-stick');
    await m.plug('plain-stick', { disk: { image: BITLOCKER_TO_GO } });
    await m.plug('plain-stick', { serial: 'MIXED0001', disk: { image: MIXED, partitions: 2 } }, '1-6');
    expect(m.fixture.writes).toEqual(['authorized_default=0', '1-2/authorized=1', '1-1/authorized=1', '1-6/authorized=1', '1-6/authorized=0']);
    const outcomes = m.events
      .filter((e) => e.type !== 'usb.connected')
      .map((e) => [e.type, (e.data as { scheme?: string; reason?: string }).scheme ?? (e.data as { reason: string }).reason]);
    expect(outcomes).toEqual([
      ['usb.storage.allowed', 'luks2'],
      ['usb.storage.allowed', 'bitlocker-to-go'],
      ['usb.storage.blocked', 'unencrypted'],
    ]);
    expect(m.commands).toEqual([
      'udevadm trigger --action=change --subsystem-match=block --sysname-match=sdb',
      'udevadm trigger --action=change --subsystem-match=block --sysname-match=sdc',
    ]);
    await m.close();
  });

  it('judges the partitions the kernel made, not a LUKS header written over an ordinary MBR', async () => {
    const m = await machine(basildon);
    await m.plug('plain-stick', { disk: { image: DISGUISED, partitions: 1 } });
    expect(m.events.find((e) => e.type === 'usb.storage.blocked')).toMatchObject({
      data: { reason: 'unencrypted', volumes: [{ device: '/dev/sdb1', filesystem: 'vfat' }] },
    });
    expect(m.fixture.authorized('1-1')).toBe('0');
    await m.close();
  });

  it('under carrington-infant: blocks every stick, encrypted or not, without ever authorising it, and offers no request', async () => {
    const m = await machine(carrington);
    await m.plug('encrypted-stick');
    await m.plug('plain-stick');
    expect(m.fixture.writes).toEqual(['authorized_default=0', '1-2/authorized=0', '1-1/authorized=0']);
    expect(m.events.filter((e) => e.type === 'usb.storage.blocked').map((e) => (e.data as { reason: string }).reason)).toEqual(['block-all', 'block-all']);
    expect(m.notices.map((n) => n.actions)).toEqual([
      ['dismiss', 'enter-code'],
      ['dismiss', 'enter-code'],
    ]);
    await m.close();
  });

  it('decides a stick that was already plugged in when the agent started', async () => {
    const m = await machine(basildon, { before: (f) => f.plug(DEVICES['present-at-start'].port, DEVICES['present-at-start'].device, false) });
    expect(m.fixture.writes).toEqual(['authorized_default=0', '1-4/authorized=0']);
    expect(m.types()).toEqual(['usb.connected', 'usb.storage.blocked']);
    await m.close();
  });

  it('blocks a stick that is also a keyboard (BadUSB) before it can type, and authorises a plain keyboard', async () => {
    const m = await machine(basildon);
    await m.plug('plain-stick', { interfaceClasses: [8, 3] });
    await m.plug('keyboard');
    expect(m.fixture.writes).toEqual(['authorized_default=0', '1-1/authorized=0', '1-3/authorized=1']);
    expect(m.events.find((e) => e.type === 'usb.storage.blocked')).toMatchObject({ data: { reason: 'bad-usb' } });
    await m.close();
  });

  it('allows an allowlisted VID:PID on a plain stick and still blocks another', async () => {
    const policy: Policy = { ...basildon, usbAllowlist: [{ id: 'allow-art', vendorId: '0781', productId: '5567', note: 'art department sticks' }] };
    const m = await machine(policy);
    await m.plug('plain-stick');
    await m.plug('present-at-start');
    expect(m.events.filter((e) => e.type !== 'usb.connected').map((e) => e.type)).toEqual(['usb.storage.allowed', 'usb.storage.blocked']);
    expect(m.events.find((e) => e.type === 'usb.storage.allowed')).toMatchObject({
      data: { allowlisted: true, exception: { kind: 'allowlist', id: 'allow-art' } },
    });
    await m.close();
  });

  it('allows a stick approved for every computer by the digest keyed to this computer, not by one keyed to another', async () => {
    const thisComputer = { deviceId: 'dev-this', secret: Buffer.alloc(32, 3) };
    const approved = { id: 'allow-all-1', vendorId: '0781', productId: '5567', serial: '4C530001230101110453', note: 'approved for Amy' };
    const m = await machine(basildon, { identity: thisComputer });
    await m.guard.addAllowlistEntry(keyedEntryFor(approved, Buffer.alloc(32, 4), 'api-1'));
    await m.plug('plain-stick');
    expect(m.fixture.authorized('1-1')).toBe('0');

    await m.guard.addAllowlistEntry(keyedEntryFor({ ...approved, id: 'allow-all-2' }, thisComputer.secret, 'api-1'));

    expect(m.fixture.authorized('1-1')).toBe('1');
    expect(m.events.find((e) => e.type === 'usb.storage.allowed')).toMatchObject({ data: { exception: { kind: 'allowlist', id: 'allow-all-2' } } });
    // The entry kept on disk holds the digest, never the stick's ids.
    expect(JSON.stringify(m.guard.allowlist)).not.toMatch(/0781|5567|4C530001230101110453/);
    await m.close();
  });

  it('only observing (a developer machine): blocks nothing, and says what it would have blocked', async () => {
    const m = await machine(basildon, { control: 'observe' });
    await m.plug('plain-stick');
    expect(m.fixture.writes).toEqual(['authorized_default=0', '1-1/authorized=1']);
    expect(m.events[0]).toMatchObject({ type: 'usb.connected', data: { auditWouldBlock: 'unencrypted' } });
    expect(m.notices).toEqual([]);
    await m.close();
  });

  it('keeps hostile descriptor strings as short plain text in events and notices', async () => {
    const m = await machine(basildon);
    await m.plug('hostile-strings');
    const device = (m.events[0]!.data as unknown as { device: Record<string, string> }).device;
    expect(device.product!.length).toBeLessThanOrEqual(126);
    expect(device.product!.startsWith('<script>alert(1)</script>')).toBe(true);
    // eslint-disable-next-line no-control-regex
    expect(device.manufacturer).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(device.manufacturer).toContain('\ufffd');
    expect(device.serial).toBe('\ufffd\ufffd\ufffdA');
    await m.close();
  });
  describe('deciding again', () => {
    const entry = { id: 'allow-art', vendorId: '0781', productId: '5567', note: 'art department sticks' };

    it('waits for the disk of an allowlisted stick it did not read, so its volumes are released to the desktop', async () => {
      const m = await machine({ ...basildon, usbAllowlist: [entry] }, { bindDelayMs: 30 });
      await m.plug('plain-stick');
      expect(m.fixture.writes).toEqual(['authorized_default=0', '1-1/authorized=1']);
      expect(m.commands).toEqual(['udevadm trigger --action=change --subsystem-match=block --sysname-match=sdb']);
      await m.close();
    });

    it('reports a changed outcome once, with no second usb.connected and no notice the pupil already dismissed', async () => {
      let policy: Policy = basildon;
      const m = await machine(() => policy);
      await m.plug('plain-stick');
      expect(m.types()).toEqual(['usb.connected', 'usb.storage.blocked']);
      await m.guard.reconsiderAll();
      expect(m.types()).toEqual(['usb.connected', 'usb.storage.blocked']);
      expect(m.notices).toHaveLength(1);
      policy = { ...basildon, usbAllowlist: [entry] };
      await m.guard.reconsiderAll();
      expect(m.types()).toEqual(['usb.connected', 'usb.storage.blocked', 'usb.storage.allowed']);
      expect(m.fixture.authorized('1-1')).toBe('1');
      await m.close();
    });

    it('stops a stick when the exception that let it in expires or is revoked, plugged in or not', async () => {
      const clock = { now: Date.parse('2026-11-23T15:59:00Z') };
      const m = await machine(basildon, { clock });
      await m.guard.addAllowlistEntry({ ...entry, id: 'until-four', expiresAt: '2026-11-23T16:00:00Z' });
      await m.plug('plain-stick');
      expect(m.fixture.authorized('1-1')).toBe('1');
      clock.now = Date.parse('2026-11-23T16:00:30Z');
      await m.guard.checkExpiries();
      expect(m.fixture.authorized('1-1')).toBe('0');
      expect(m.types().slice(-1)).toEqual(['usb.storage.blocked']);

      await m.guard.addAllowlistEntry({ ...entry, id: 'revocable' });
      expect(m.fixture.authorized('1-1')).toBe('1');
      expect(await m.guard.removeAllowlistEntry('revocable')).toBe(true);
      expect(m.fixture.authorized('1-1')).toBe('0');
      await m.close();
    });

    it('judges a card swapped into a reader it allowed, and stops a plain one', async () => {
      const m = await machine(basildon);
      await m.plug('encrypted-stick');
      expect(m.fixture.authorized('1-2')).toBe('1');
      m.fixture.changeMedia('1-2', DEVICES['plain-stick'].device.disk!.image);
      for (let i = 0; i < 1000 && m.fixture.authorized('1-2') !== '0'; i++) {
        await new Promise((r) => setTimeout(r, 5));
        await m.guard.settled();
      }
      expect(m.fixture.authorized('1-2')).toBe('0');
      expect(m.events.filter((e) => e.type === 'usb.storage.blocked')).toMatchObject([{ data: { reason: 'unencrypted' } }]);
      await m.close();
    });
  });
});

describe('asking for permission and typing offline codes, per person', () => {
  const AMY = { uid: 1000, sessionId: '3' };
  const BEN = { uid: 1001, sessionId: '5' };
  const IDENTITY = { deviceId: 'dev-lab-7', secret: Buffer.from('a-computer-secret-of-thirty-two!') };
  const stick = DEVICES['plain-stick'].device;
  const codeFor = (now: number) =>
    issueOfflineCode(IDENTITY.secret, { deviceId: IDENTITY.deviceId, vendorId: '0781', productId: '5567', serial: stick.serial as string }, now, 60).code;

  it('bounds the requests waiting for an answer, per person and in all, and refuses in plain words', async () => {
    // Arrange
    const sent: unknown[] = [];
    const m = await machine(basildon, { sendPermissionRequest: (r) => (sent.push(r), true) });
    await m.plug('plain-stick');
    const noticeId = m.notices[0]!.noticeId;
    const ask = (uid: number) => m.guard.answer(noticeId, 'ask-permission', 'my homework', undefined, { uid });

    // Act and assert: Amy may have a few waiting, then is told to wait for an answer
    for (let i = 0; i < PERMISSION_REQUEST_LIMITS.perUser; i++) expect(await ask(1000)).toEqual({ ok: true });
    expect(await ask(1000)).toEqual({ ok: false, code: 'INV_ERR_PERMISSION_REQUESTS_FULL', message: expect.stringMatching(/wait for an answer/) });
    // Others may still ask, until the computer holds as many as it keeps
    const others = PERMISSION_REQUEST_LIMITS.total / PERMISSION_REQUEST_LIMITS.perUser - 1;
    for (let u = 1; u <= others; u++) for (let i = 0; i < PERMISSION_REQUEST_LIMITS.perUser; i++) expect(await ask(1000 + u)).toEqual({ ok: true });
    expect(await ask(5000)).toMatchObject({ ok: false, code: 'INV_ERR_PERMISSION_REQUESTS_FULL' });
    expect(sent).toHaveLength(PERMISSION_REQUEST_LIMITS.total);
    expect(m.events.filter((e) => e.type === 'permission.requested')).toHaveLength(PERMISSION_REQUEST_LIMITS.total);

    // An answer frees a place
    await m.guard.onDecision({ requestId: (sent[0] as { requestId: string }).requestId, decision: 'refused' });
    expect(await ask(1000)).toEqual({ ok: true });
    await m.close();
  });

  it('loads a saved list longer than it keeps (an older agent let 1,500 pile up) as far as it keeps, skipping what it cannot read', async () => {
    // Arrange: 1,500 requests as an older agent saved them, and one damaged entry
    const dataDir = tempDir('guard');
    const request = (i: number) => ({
      v: 1,
      type: 'permission.request',
      requestId: `req-${i}`,
      kind: 'usb-device',
      subject: { vendorId: '0781', productId: '5567', label: 'SanDisk Cruzer Blade (0781:5567)' },
      user: { name: 'unknown' },
      reason: 'my homework',
    });
    writeFileSync(
      join(dataDir, 'usb-permission-requests.json'),
      JSON.stringify([{ v: 1, type: 'nonsense' }, ...Array.from({ length: 1500 }, (_, i) => request(i))]),
    );
    const sent: Array<{ requestId: string }> = [];

    // Act
    const m = await machine(basildon, { dataDir, sendPermissionRequest: (r) => (sent.push(r as { requestId: string }), true) });
    m.guard.resendPendingRequests();

    // Assert: the oldest it keeps are sent again; the rest were already with the collector or are dropped
    expect(sent.map((r) => r.requestId)).toEqual(Array.from({ length: PERMISSION_REQUEST_LIMITS.total }, (_, i) => `req-${i}`));
    await m.close();
  });

  it("keeps the wrong-code throttle per person: Ben's guesses do not lock out a teacher's valid code", async () => {
    // Arrange
    const clock = { now: Date.parse('2026-11-23T09:00:00.000Z') };
    const m = await machine(basildon, { identity: IDENTITY, clock });
    await m.plug('plain-stick');
    const noticeId = m.notices[0]!.noticeId;

    // Act: Ben guesses until he is refused for a while
    for (let i = 0; i < 5; i++)
      expect(await m.guard.answer(noticeId, 'enter-code', undefined, 'AAAA-AAAA-AAAA', BEN)).toMatchObject({ code: 'INV_ERR_OFFLINE_CODE_INVALID' });
    expect(await m.guard.answer(noticeId, 'enter-code', undefined, 'AAAA-AAAA-AAAA', BEN)).toMatchObject({ code: 'INV_ERR_OFFLINE_CODE_THROTTLED' });

    // Assert: Amy's valid code still works
    expect(await m.guard.answer(noticeId, 'enter-code', undefined, codeFor(clock.now), AMY)).toEqual({ ok: true });
    await m.close();
  });

  it('remembers the wrong-code throttle across a restart of the agent, until the window has passed', async () => {
    // Arrange: Ben is throttled
    const dataDir = tempDir('guard');
    const clock = { now: Date.parse('2026-11-23T09:00:00.000Z') };
    const first = await machine(basildon, { identity: IDENTITY, clock, dataDir });
    await first.plug('plain-stick');
    for (let i = 0; i < 5; i++) await first.guard.answer(first.notices[0]!.noticeId, 'enter-code', undefined, 'AAAA-AAAA-AAAA', BEN);
    await first.close();

    // Act: the agent restarts (killed, say, to reset the count)
    clock.now += 60_000;
    const second = await machine(basildon, { identity: IDENTITY, clock, dataDir });
    await second.plug('plain-stick');
    const noticeId = second.notices[0]!.noticeId;

    // Assert: still refused, even a valid code, until 15 minutes after his last wrong one
    expect(await second.guard.answer(noticeId, 'enter-code', undefined, codeFor(clock.now), BEN)).toMatchObject({ code: 'INV_ERR_OFFLINE_CODE_THROTTLED' });
    clock.now += 15 * 60_000;
    expect(await second.guard.answer(noticeId, 'enter-code', undefined, codeFor(clock.now), BEN)).toEqual({ ok: true });
    await second.close();
  });
});
