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
}
