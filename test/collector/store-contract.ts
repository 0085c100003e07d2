import { randomUUID } from 'node:crypto';
import type { CollectorStore } from '../../collector/store/store';
import type { EventEnvelope } from '../../shared/protocol';
import { sampleEvent } from '../support/samples';

const T0 = '2026-11-23T09:00:00.000Z';
const inAnHour = '2026-11-23T10:00:00.000Z';

export function eventFor(deviceId: string, seq: number, overrides: Partial<EventEnvelope> = {}): EventEnvelope {
  return { ...sampleEvent('usb.connected'), id: randomUUID(), deviceId, seq, ...overrides } as EventEnvelope;
}

async function enroll(store: CollectorStore, id: string): Promise<void> {
  await store.enrollDevice({
    id,
    installationId: `inst-${id}`,
    secret: Buffer.alloc(32, 7),
    hostname: `host-${id}`,
    platform: 'linux',
    agentVersion: '0.1.0',
    tokenId: 'tok-1',
    now: T0,
  });
}

/**
 * What every CollectorStore must do, whatever is behind it. Each implementation
 * runs this same suite; an in-memory stand-in would have to pass it too.
 */
export function storeContract(makeStore: () => Promise<{ store: CollectorStore; cleanup: () => Promise<void> }>): void {
  let store: CollectorStore;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    ({ store, cleanup } = await makeStore());
    await store.migrate();
  });
  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  it('migrates idempotently', async () => {
    await store.migrate();
    expect(await store.countEvents()).toBe(0);
  });

  describe('enrollment tokens', () => {
    it('are usable until they expire, and not once revoked', async () => {
      await store.createEnrollmentToken({ id: 'tok-1', tokenHash: 'h1', note: 'term 1', createdAt: T0, expiresAt: inAnHour });
      expect(await store.findUsableEnrollmentToken('h1', T0)).toBe('tok-1');
      expect(await store.findUsableEnrollmentToken('h1', inAnHour)).toBeUndefined();
      expect(await store.findUsableEnrollmentToken('other', T0)).toBeUndefined();
      expect(await store.revokeEnrollmentToken('tok-1', T0)).toBe(true);
      expect(await store.revokeEnrollmentToken('tok-1', T0)).toBe(false);
      expect(await store.findUsableEnrollmentToken('h1', T0)).toBeUndefined();
      expect(await store.listEnrollmentTokens()).toEqual([{ id: 'tok-1', note: 'term 1', createdAt: T0, expiresAt: inAnHour, revokedAt: T0 }]);
    });
  });

  describe('devices', () => {
    it('keep their secret, can be revoked, and are listed with what they last reported', async () => {
      await enroll(store, 'dev-a');
      expect(await store.deviceAuth('dev-a')).toEqual({ secret: Buffer.alloc(32, 7), revoked: false, lastSeq: 0 });
      expect(await store.deviceAuth('dev-nobody')).toBeUndefined();
      await store.deviceConnected('dev-a', {
        hostname: 'CLASS3-01',
        agentVersion: '0.2.0',
        policyRevision: 4,
        now: inAnHour,
        instance: 'collector-1',
        confirmed: false,
      });
      expect(await store.listDevices()).toEqual([
        expect.objectContaining({
          id: 'dev-a',
          hostname: 'CLASS3-01',
          platform: 'linux',
          agentVersion: '0.2.0',
          policyRevision: 4,
          lastSeen: inAnHour,
          revokedAt: null,
          lastSeq: 0,
        }),
      ]);
      expect(await store.deviceByInstallation('inst-dev-a')).toEqual({ deviceId: 'dev-a', secret: Buffer.alloc(32, 7), confirmed: false, revoked: false });
      expect((await store.deviceByInstallation('inst-dev-a'))?.confirmed).toBe(false);
      await store.deviceConnected('dev-a', {
        hostname: 'CLASS3-01',
        agentVersion: '0.2.0',
        policyRevision: 4,
        now: inAnHour,
        instance: 'collector-1',
        confirmed: true,
      });
      expect((await store.deviceByInstallation('inst-dev-a'))?.confirmed).toBe(true);
      expect(await store.deviceByInstallation('inst-nobody')).toBeUndefined();
      expect(await store.revokeDevice('dev-a', inAnHour)).toBe(true);
      expect((await store.deviceAuth('dev-a'))?.revoked).toBe(true);
    });
  });

  describe('events', () => {
    beforeEach(async () => {
      await enroll(store, 'dev-a');
      await enroll(store, 'dev-b');
    });

    it('stores each (device, seq) once however often it is sent', async () => {
      const batch = [1, 2, 3].map((seq) => eventFor('dev-a', seq));
      expect(await store.insertEvents('dev-a', batch, T0)).toEqual({ inserted: 3, lastSeq: 3 });
      expect(await store.insertEvents('dev-a', batch, T0)).toEqual({ inserted: 0, lastSeq: 3 });
      expect(await store.insertEvents('dev-a', [...batch.slice(1), eventFor('dev-a', 4)], T0)).toEqual({ inserted: 1, lastSeq: 4 });
      expect(await store.countEvents()).toBe(4);
      expect((await store.deviceAuth('dev-a'))?.lastSeq).toBe(4);
    });

    it('keeps devices apart: the same seq from two devices is two events', async () => {
      await store.insertEvents('dev-a', [eventFor('dev-a', 1)], T0);
      await store.insertEvents('dev-b', [eventFor('dev-b', 1)], T0);
      expect(await store.countEvents()).toBe(2);
    });

    it('stores a batch resent concurrently once', async () => {
      const batch = Array.from({ length: 50 }, (_, i) => eventFor('dev-a', i + 1));
      const results = await Promise.all(Array.from({ length: 8 }, () => store.insertEvents('dev-a', batch, T0)));
      expect(results.reduce((n, r) => n + r.inserted, 0)).toBe(50);
      expect(await store.countEvents()).toBe(50);
    });

    it('returns events exactly as sent, with when they were received', async () => {
      const e = eventFor('dev-a', 1, { clause: { id: 'c', document: 'd', section: 's', quote: '<b>q</b>' } });
      await store.insertEvents('dev-a', [e], inAnHour);
      expect((await store.queryEvents({ limit: 10 })).events).toEqual([{ ...e, receivedAt: inAnHour }]);
    });

    it('filters by device, type, user, severity and time', async () => {
      await store.insertEvents(
        'dev-a',
        [eventFor('dev-a', 1, { time: '2026-11-23T08:00:00.000Z' }), eventFor('dev-a', 2, { severity: 'alert', time: '2026-11-23T09:30:00+01:00' })],
        T0,
      );
      await store.insertEvents(
        'dev-b',
        [{ ...sampleEvent('session.started'), id: randomUUID(), deviceId: 'dev-b', seq: 1, user: { name: 'bob' } } as EventEnvelope],
        T0,
      );
      const seqs = async (q: Partial<Parameters<CollectorStore['queryEvents']>[0]>) =>
        (await store.queryEvents({ limit: 100, ...q })).events.map((e) => `${String(e.deviceId)}:${String(e.seq)}`);
      expect(await seqs({ device: 'dev-a' })).toEqual(['dev-a:1', 'dev-a:2']);
      expect(await seqs({ type: 'session.started' })).toEqual(['dev-b:1']);
      expect(await seqs({ user: 'bob' })).toEqual(['dev-b:1']);
      expect(await seqs({ severity: 'alert' })).toEqual(['dev-a:2']);
      // 09:30+01:00 is 08:30Z: times compare as instants, not as text.
      expect(await seqs({ since: '2026-11-23T08:15:00Z', until: '2026-11-23T08:45:00Z' })).toEqual(['dev-a:2']);
    });

    it('pages through everything exactly once with cursors', async () => {
      await store.insertEvents(
        'dev-a',
        Array.from({ length: 25 }, (_, i) => eventFor('dev-a', i + 1)),
        T0,
      );
      const seen: unknown[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const result = await store.queryEvents({ limit: 10, ...(cursor ? { cursor } : {}) });
        seen.push(...result.events.map((e) => e.seq));
        if (!result.next) break;
        cursor = result.next;
      }
      expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    });
  });

  describe('API tokens', () => {
    it('are found by hash with their role', async () => {
      expect(await store.hasApiToken('admin')).toBe(false);
      await store.createApiToken({ id: 'api-1', tokenHash: 'hash-1', role: 'admin', createdAt: T0 });
      expect(await store.apiTokenRole('hash-1')).toBe('admin');
      expect(await store.apiTokenRole('hash-2')).toBeUndefined();
      expect(await store.hasApiToken('admin')).toBe(true);
      expect(await store.hasApiToken('readonly')).toBe(false);
    });
  });

  describe('permission requests', () => {
    const request = (requestId: string, deviceId = 'dev-a', createdAt = T0) => ({
      deviceId,
      requestId,
      kind: 'usb-device' as const,
      subject: { vendorId: '0781', productId: '5567', serial: 'X1', label: 'SanDisk Cruzer Blade' },
      user: { name: 'amy.p' },
      reason: 'homework <b>now</b>',
      createdAt,
    });
    const approve = {
      decision: 'approved' as const,
      decidedAt: inAnHour,
      decidedBy: 'api-1',
      note: 'ok',
      expiresAt: '2026-11-30T16:00:00.000Z',
      scope: 'device' as const,
    };
    const allow = (id: string, deviceId = 'dev-a') => ({
      id,
      deviceId,
      createdAt: inAnHour,
      command: { kind: 'usb-allow' as const, entry: { id: `allow-${id}`, vendorId: '0781', productId: '5567', devices: [deviceId], note: 'n' } },
    });

    beforeEach(async () => {
      await enroll(store, 'dev-a');
      await enroll(store, 'dev-b');
    });

    it('are stored once per (device, requestId), a resend changing nothing', async () => {
      const first = await store.createPermissionRequest(request('r-1'));
      expect(first).toEqual({
        created: true,
        record: {
          ...request('r-1'),
          status: 'pending',
          decidedAt: null,
          decidedBy: null,
          note: null,
          expiresAt: null,
          scope: null,
          decisionDeliveredAt: null,
        },
      });
      const again = await store.createPermissionRequest({ ...request('r-1'), reason: 'changed', createdAt: inAnHour });
      expect(again).toEqual({ created: false, record: first.record });
      expect((await store.createPermissionRequest(request('r-1', 'dev-b'))).created).toBe(true);
      expect(await store.getPermissionRequest('dev-a', 'r-1')).toEqual(first.record);
      expect(await store.getPermissionRequest('dev-a', 'r-nobody')).toBeUndefined();
    });

    it('are listed newest first, filtered by status and device, and paged with cursors', async () => {
      for (let i = 1; i <= 5; i++) await store.createPermissionRequest(request(`r-${i}`));
      await store.createPermissionRequest(request('r-1', 'dev-b'));
      await store.decidePermissionRequest('dev-a', 'r-2', { ...approve, decision: 'refused', expiresAt: null, scope: null }, []);
      const ids = (page: { requests: Array<{ deviceId: string; requestId: string }> }) => page.requests.map((r) => `${r.deviceId}/${r.requestId}`);
      expect(ids(await store.listPermissionRequests({ limit: 100 }))).toEqual(['dev-b/r-1', 'dev-a/r-5', 'dev-a/r-4', 'dev-a/r-3', 'dev-a/r-2', 'dev-a/r-1']);
      expect(ids(await store.listPermissionRequests({ limit: 100, status: 'refused' }))).toEqual(['dev-a/r-2']);
      expect(ids(await store.listPermissionRequests({ limit: 100, status: 'pending', device: 'dev-a' }))).toEqual([
        'dev-a/r-5',
        'dev-a/r-4',
        'dev-a/r-3',
        'dev-a/r-1',
      ]);
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const result = await store.listPermissionRequests({ limit: 2, device: 'dev-a', ...(cursor ? { cursor } : {}) });
        seen.push(...ids(result));
        if (!result.next) break;
        cursor = result.next;
      }
      expect(seen).toEqual(['dev-a/r-5', 'dev-a/r-4', 'dev-a/r-3', 'dev-a/r-2', 'dev-a/r-1']);
    });

    it('are decided once, with their commands queued in the same transaction', async () => {
      await store.createPermissionRequest(request('r-1'));
      const decided = await store.decidePermissionRequest('dev-a', 'r-1', approve, [allow('cmd-1'), allow('cmd-2', 'dev-b')]);
      expect(decided).toMatchObject({ status: 'approved', decidedAt: inAnHour, decidedBy: 'api-1', note: 'ok', expiresAt: approve.expiresAt, scope: 'device' });
      expect((await store.undeliveredCommands('dev-a')).map((c) => c.id)).toEqual(['cmd-1']);
      expect((await store.undeliveredCommands('dev-b')).map((c) => c.id)).toEqual(['cmd-2']);

      await expect(store.decidePermissionRequest('dev-a', 'r-1', { ...approve, decision: 'refused' }, [allow('cmd-3')])).rejects.toMatchObject({
        code: 'INV_ERR_PERMISSION_DECIDED',
      });
      await expect(store.decidePermissionRequest('dev-a', 'r-nobody', approve, [allow('cmd-4')])).rejects.toMatchObject({
        code: 'INV_ERR_PERMISSION_NOT_FOUND',
      });
      // The losers' commands were not queued.
      expect(await store.getCommand('cmd-3')).toBeUndefined();
      expect(await store.getCommand('cmd-4')).toBeUndefined();
      expect((await store.getPermissionRequest('dev-a', 'r-1'))?.status).toBe('approved');
    });

    it('let exactly one of several concurrent decisions win', async () => {
      await store.createPermissionRequest(request('r-1'));
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => store.decidePermissionRequest('dev-a', 'r-1', { ...approve, decidedBy: `api-${i}` }, [allow(`cmd-race-${i}`)])),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').map((r) => (r.reason as { code: string }).code)).toEqual(
        Array(5).fill('INV_ERR_PERMISSION_DECIDED'),
      );
      expect(await store.undeliveredCommands('dev-a')).toHaveLength(1);
    });

    it('hand out each decision for delivery once, and again after an undo', async () => {
      await store.createPermissionRequest(request('r-1'));
      await store.createPermissionRequest(request('r-2'));
      expect(await store.undeliveredDecisions('dev-a')).toEqual([]);
      expect(await store.claimDecisionDelivery('dev-a', 'r-1', inAnHour)).toBe(false);
      await store.decidePermissionRequest('dev-a', 'r-1', approve, []);
      expect((await store.undeliveredDecisions('dev-a')).map((r) => r.requestId)).toEqual(['r-1']);
      expect(await store.undeliveredDecisions('dev-b')).toEqual([]);
      expect(await store.claimDecisionDelivery('dev-a', 'r-1', inAnHour)).toBe(true);
      expect(await store.claimDecisionDelivery('dev-a', 'r-1', inAnHour)).toBe(false);
      expect(await store.undeliveredDecisions('dev-a')).toEqual([]);
      expect((await store.getPermissionRequest('dev-a', 'r-1'))?.decisionDeliveredAt).toBe(inAnHour);
      await store.undoDecisionDelivery('dev-a', 'r-1');
      expect((await store.undeliveredDecisions('dev-a')).map((r) => r.requestId)).toEqual(['r-1']);
    });

    it('find API tokens with their id, for the record of who decided', async () => {
      await store.createApiToken({ id: 'api-7', tokenHash: 'hash-7', role: 'readonly', createdAt: T0 });
      expect(await store.apiToken('hash-7')).toEqual({ id: 'api-7', role: 'readonly' });
      expect(await store.apiToken('hash-8')).toBeUndefined();
    });
  });
}
