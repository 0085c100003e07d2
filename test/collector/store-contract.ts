import { randomBytes, randomUUID } from 'node:crypto';
import type { CollectorStore } from '../../collector/store/store';
import { proofFor, proofMatches } from '../../node-common/device-proof';
import { checkOfflineCode, issueOfflineCode } from '../../node-common/offline-code';
import type { EventEnvelope } from '../../shared/protocol';
import { sampleEvent } from '../support/samples';
import { TEST_SECRET_KEY } from '../support/secret-key';

const T0 = '2026-11-23T09:00:00.000Z';
const inAnHour = '2026-11-23T10:00:00.000Z';

export function eventFor(deviceId: string, seq: number, overrides: Partial<EventEnvelope> = {}): EventEnvelope {
  return { ...sampleEvent('usb.connected'), id: randomUUID(), deviceId, seq, ...overrides } as EventEnvelope;
}

/** The time of the event with this seq in the software tests: one minute apart. */
const at = (seq: number): string => new Date(Date.parse(T0) + seq * 60_000).toISOString();

type ProgramData = { name: string; version?: string | undefined; publisher?: string; source?: string };

function installed(seq: number, p: ProgramData, deviceId = 'dev-a'): EventEnvelope {
  const data = {
    name: p.name,
    ...('version' in p ? (p.version === undefined ? {} : { version: p.version }) : { version: '1.0' }),
    ...(p.publisher ? { publisher: p.publisher } : {}),
    source: p.source ?? 'dpkg',
  };
  return { id: randomUUID(), deviceId, seq, time: at(seq), type: 'software.installed', severity: 'notice', data } as EventEnvelope;
}

function removed(seq: number, p: ProgramData, deviceId = 'dev-a'): EventEnvelope {
  const data = { name: p.name, ...('version' in p ? (p.version === undefined ? {} : { version: p.version }) : { version: '1.0' }), source: p.source ?? 'dpkg' };
  return { id: randomUUID(), deviceId, seq, time: at(seq), type: 'software.removed', severity: 'notice', data } as EventEnvelope;
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
    approval: 'approved',
    enrolledFrom: null,
  });
}

/** A store under test, on a database of its own, sealing device secrets under TEST_SECRET_KEY. */
export interface StoreUnderTest {
  store: CollectorStore;
  cleanup: () => Promise<void>;
  /** Another store on the same database, under this key: a second collector process, or whoever holds a copy of the database. Not migrated. */
  open: (key: Buffer, options?: { maxProgramsPerDevice?: number }) => CollectorStore;
  /** The bytes the database itself holds for a device's secret: what a copy of the database gives away. */
  storedSecret: (deviceId: string) => Promise<Buffer>;
}

/** A device as a release before secrets were sealed left it: its secret in clear. */
export interface LegacyDevice {
  id: string;
  secret: Buffer;
}

/**
 * What every CollectorStore must do, whatever is behind it. Each implementation
 * runs this same suite; an in-memory stand-in would have to pass it too.
 * `makeLegacy` makes a database at the last schema before device secrets were
 * sealed, holding these devices in clear (store not yet migrated).
 */
export function storeContract(makeStore: () => Promise<StoreUnderTest>, makeLegacy: (devices: readonly LegacyDevice[]) => Promise<StoreUnderTest>): void {
  let store: CollectorStore;
  let cleanup: () => Promise<void>;
  let under: StoreUnderTest;

  beforeEach(async () => {
    under = await makeStore();
    ({ store, cleanup } = under);
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
    const token = (id: string, hash: string, limits: { maxUses?: number; perMinute?: number } = {}) =>
      store.createEnrollmentToken({
        id,
        tokenHash: hash,
        note: 'term 1',
        createdAt: T0,
        expiresAt: inAnHour,
        approval: 'manual',
        maxUses: limits.maxUses ?? 100,
        perMinute: limits.perMinute ?? 10,
      });
    const second = (s: number) => new Date(Date.parse(T0) + s * 1000).toISOString();

    it('are usable until they expire, and not once revoked', async () => {
      await token('tok-1', 'h1');
      expect(await store.findUsableEnrollmentToken('h1', T0)).toEqual({ id: 'tok-1', approval: 'manual', uses: 0, maxUses: 100 });
      expect(await store.findUsableEnrollmentToken('h1', inAnHour)).toBeUndefined();
      expect(await store.findUsableEnrollmentToken('other', T0)).toBeUndefined();
      expect(await store.revokeEnrollmentToken('tok-1', T0)).toBe(true);
      expect(await store.revokeEnrollmentToken('tok-1', T0)).toBe(false);
      expect(await store.findUsableEnrollmentToken('h1', T0)).toBeUndefined();
      expect(await store.useEnrollmentToken('tok-1', T0)).toBe('used-up');
      expect(await store.listEnrollmentTokens()).toEqual([
        {
          id: 'tok-1',
          note: 'term 1',
          createdAt: T0,
          expiresAt: inAnHour,
          revokedAt: T0,
          approval: 'manual',
          maxUses: 100,
          uses: 0,
          perMinute: 10,
          lastUsedAt: null,
        },
      ]);
    });

    it('enroll at most maxUses devices, and at most perMinute in any minute, however many race', async () => {
      await token('tok-1', 'h1', { maxUses: 5, perMinute: 3 });

      const burst = await Promise.all(Array.from({ length: 10 }, () => store.useEnrollmentToken('tok-1', T0)));
      expect(burst.filter((u) => u === 'used')).toHaveLength(3);
      expect(burst.filter((u) => u === 'rate-limited')).toHaveLength(7);
      expect(await store.useEnrollmentToken('tok-1', second(59))).toBe('rate-limited');

      // The window that began at T0 ends a minute later: a new one begins.
      expect(await Promise.all([0, 1, 2].map(() => store.useEnrollmentToken('tok-1', second(60))))).toEqual(
        expect.arrayContaining(['used', 'used', 'used-up']),
      );
      expect(await store.useEnrollmentToken('tok-1', second(600))).toBe('used-up');
      expect((await store.listEnrollmentTokens())[0]).toMatchObject({ uses: 5, maxUses: 5, lastUsedAt: second(60) });
      expect(await store.findUsableEnrollmentToken('h1', second(600))).toMatchObject({ uses: 5, maxUses: 5 });
    });
  });

  describe('device approval', () => {
    const pending = (id: string) =>
      store.enrollDevice({
        id,
        installationId: `inst-${id}`,
        secret: Buffer.alloc(32, 1),
        hostname: 'HEAD-TEACHER-PC',
        platform: 'win32',
        agentVersion: '0.1.0',
        tokenId: 'tok-1',
        now: T0,
        approval: 'pending',
        enrolledFrom: '127.0.0.1',
      });

    it('keeps a device pending until it is approved or refused, once; refused is revoked', async () => {
      await pending('dev-p');
      await pending('dev-q');
      expect(await store.deviceAuth('dev-p')).toMatchObject({ approval: 'pending', revoked: false });
      expect(await store.deviceByInstallation('inst-dev-p')).toMatchObject({ approval: 'pending' });

      expect(await store.decideDevice('dev-p', 'approved', inAnHour, 'api-1')).toBe(true);
      expect(await store.decideDevice('dev-p', 'refused', inAnHour, 'api-1')).toBe(false);
      expect(await store.decideDevice('dev-q', 'refused', inAnHour, 'api-2')).toBe(true);
      expect(await store.decideDevice('dev-q', 'approved', inAnHour, 'api-2')).toBe(false);
      expect(await store.decideDevice('dev-nobody', 'approved', inAnHour, 'api-2')).toBe(false);

      expect(await store.deviceAuth('dev-p')).toMatchObject({ approval: 'approved', revoked: false });
      expect(await store.deviceAuth('dev-q')).toMatchObject({ approval: 'refused', revoked: true });
      const listed = await store.listDevices();
      expect(listed.find((d) => d.id === 'dev-p')).toMatchObject({
        approval: 'approved',
        decidedAt: inAnHour,
        decidedBy: 'api-1',
        enrolledFrom: '127.0.0.1',
        tokenId: 'tok-1',
      });
      expect(listed.find((d) => d.id === 'dev-q')).toMatchObject({ approval: 'refused', revokedAt: inAnHour, decidedBy: 'api-2' });
    });

    it('decides a pending device once, whichever decision races', async () => {
      await pending('dev-p');
      const results = await Promise.all([
        store.decideDevice('dev-p', 'approved', T0, 'a'),
        store.decideDevice('dev-p', 'refused', T0, 'b'),
        store.decideDevice('dev-p', 'approved', T0, 'c'),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('pages the devices with one approval: every page full of them, each once, in hostname order', async () => {
      // 30 devices, one in three pending, their hostnames interleaved: a filter applied after paging would give short pages.
      for (let i = 0; i < 30; i++) {
        const id = `dev-${String(i).padStart(2, '0')}`;
        await store.enrollDevice({
          id,
          installationId: `inst-${id}`,
          secret: Buffer.alloc(32, 1),
          hostname: `LAB-${String(29 - i).padStart(2, '0')}`,
          platform: 'linux',
          agentVersion: '0.1.0',
          tokenId: 'tok-1',
          now: T0,
          approval: i % 3 === 0 ? 'pending' : 'approved',
          enrolledFrom: null,
        });
      }
      expect(await store.decideDevice('dev-03', 'refused', inAnHour, 'api-1')).toBe(true);
      const walk = async (approval: 'pending' | 'approved' | 'refused' | undefined, limit: number) => {
        const pages: string[][] = [];
        let cursor: string | undefined;
        for (let n = 0; n < 40; n++) {
          const page = await store.listDevicePage({ limit, ...(approval ? { approval } : {}), ...(cursor ? { cursor } : {}) });
          expect(page.devices.every((d) => approval === undefined || d.approval === approval)).toBe(true);
          pages.push(page.devices.map((d) => d.hostname));
          if (page.next === null) return pages;
          cursor = page.next;
        }
        throw new Error('more than 40 pages');
      };
      const pendingPages = await walk('pending', 3);
      expect(pendingPages.map((p) => p.length)).toEqual([3, 3, 3]);
      const pendingNames = Array.from({ length: 10 }, (_, k) => k * 3)
        .filter((i) => i !== 3)
        .map((i) => `LAB-${String(29 - i).padStart(2, '0')}`)
        .sort();
      expect(pendingPages.flat()).toEqual(pendingNames);
      expect(await walk('refused', 3)).toEqual([['LAB-26']]);
      expect((await walk('approved', 7)).map((p) => p.length)).toEqual([7, 7, 6]);
      expect((await walk(undefined, 7)).flat()).toHaveLength(30);
      // A cursor taken from the unfiltered list carries on in the filtered one.
      const first = await store.listDevicePage({ limit: 5 });
      const rest = await store.listDevicePage({ limit: 100, approval: 'pending', cursor: first.next! });
      expect(rest.devices.map((d) => d.hostname)).toEqual(pendingNames.filter((h) => h > first.devices[4]!.hostname));
      expect(rest.next).toBeNull();
    });
  });

  describe('devices', () => {
    it('keep their secret, can be revoked, and are listed with what they last reported', async () => {
      await enroll(store, 'dev-a');
      expect(await store.deviceAuth('dev-a')).toEqual({ secret: Buffer.alloc(32, 7), revoked: false, lastSeq: 0, approval: 'approved' });
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
      expect(await store.deviceByInstallation('inst-dev-a')).toEqual({
        deviceId: 'dev-a',
        secret: Buffer.alloc(32, 7),
        confirmed: false,
        revoked: false,
        approval: 'approved',
      });
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

  it('refreshes the presence of the devices a process holds, and names those of them that are revoked', async () => {
    for (const id of ['dev-a', 'dev-b', 'dev-c']) await enroll(store, id);
    const seen = { hostname: 'h', agentVersion: '0.1.0', policyRevision: 1, now: T0, confirmed: true };
    await store.deviceConnected('dev-a', { ...seen, instance: 'collector-1' });
    await store.deviceConnected('dev-b', { ...seen, instance: 'collector-1' });
    await store.deviceConnected('dev-c', { ...seen, instance: 'collector-2' });
    await store.revokeDevice('dev-b', T0);
    await store.revokeDevice('dev-c', T0);
    expect(await store.refreshPresence('collector-1', inAnHour)).toEqual(['dev-b']);
    expect((await store.listDevices()).find((d) => d.id === 'dev-a')?.presenceAt).toBe(inAnHour);
    expect(await store.refreshPresence('collector-3', inAnHour)).toEqual([]);
  });

  describe('device secrets at rest', () => {
    const subject = { deviceId: 'dev-a', vendorId: '0781', productId: '5567', serial: 'X1' };
    const NOW = Date.parse(T0);

    /** What someone holding only the database can do with what it stores: prove, and mint an offline code. */
    function expectUselessWithoutTheKey(stored: Buffer, secret: Buffer): void {
      expect(stored.indexOf(secret)).toBe(-1);
      const nonce = randomBytes(32).toString('base64url');
      expect(proofMatches(secret, nonce, 'dev-a', proofFor(stored, nonce, 'dev-a'))).toBe(false);
      const minted = issueOfflineCode(stored, subject, NOW, 60);
      expect(checkOfflineCode(secret, subject, minted.code, NOW)).toEqual({ ok: false, code: 'INV_ERR_OFFLINE_CODE_INVALID' });
    }

    it('are kept sealed: the collector gets each back, the database alone proves nothing and mints no code', async () => {
      const secret = randomBytes(32);
      await store.enrollDevice({
        id: 'dev-a',
        installationId: 'inst-a',
        secret,
        hostname: 'h',
        platform: 'linux',
        agentVersion: '1',
        tokenId: 't',
        now: T0,
        approval: 'approved',
        enrolledFrom: null,
      });
      expect((await store.deviceAuth('dev-a'))?.secret).toEqual(secret);
      expect((await store.deviceByInstallation('inst-a'))?.secret).toEqual(secret);
      expectUselessWithoutTheKey(await under.storedSecret('dev-a'), secret);
      // The collector's own codes still work on the computer: it unseals the secret to mint them.
      const issued = issueOfflineCode((await store.deviceAuth('dev-a'))!.secret, subject, NOW, 60);
      expect(checkOfflineCode(secret, subject, issued.code, NOW)).toMatchObject({ ok: true });
    });

    it('are shared by every store opened with the same key, and a store with another key refuses the database', async () => {
      const secret = randomBytes(32);
      await store.enrollDevice({
        id: 'dev-a',
        installationId: 'inst-a',
        secret,
        hostname: 'h',
        platform: 'linux',
        agentVersion: '1',
        tokenId: 't',
        now: T0,
        approval: 'approved',
        enrolledFrom: null,
      });
      const twin = under.open(TEST_SECRET_KEY);
      const stranger = under.open(randomBytes(32));
      try {
        await twin.migrate();
        expect((await twin.deviceAuth('dev-a'))?.secret).toEqual(secret);
        await expect(stranger.migrate()).rejects.toMatchObject({ code: 'INV_ERR_SECRET_KEY_MISMATCH' });
      } finally {
        await twin.close();
        await stranger.close();
      }
    });

    it('refuse a key that is not 32 bytes', () => {
      expect(() => under.open(Buffer.alloc(16))).toThrow(expect.objectContaining({ code: 'INV_ERR_CONFIG_INVALID' }) as Error);
    });

    it('left in clear by an older release are sealed the first time the store opens the database', async () => {
      const devices = [
        { id: 'dev-old-1', secret: randomBytes(32) },
        { id: 'dev-old-2', secret: randomBytes(32) },
      ];
      const legacy = await makeLegacy(devices);
      try {
        expect(await legacy.storedSecret('dev-old-1')).toEqual(devices[0]!.secret);
        await legacy.store.migrate();
        for (const d of devices) {
          expect((await legacy.store.deviceAuth(d.id))?.secret).toEqual(d.secret);
          const stored = await legacy.storedSecret(d.id);
          expect(stored.indexOf(d.secret)).toBe(-1);
          expect(proofMatches(d.secret, 'bm9uY2U', d.id, proofFor(stored, 'bm9uY2U', d.id))).toBe(false);
        }
        // Opening again changes nothing more.
        await legacy.store.migrate();
        expect((await legacy.store.deviceAuth('dev-old-2'))?.secret).toEqual(devices[1]!.secret);
      } finally {
        await legacy.store.close();
        await legacy.cleanup();
      }
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

    const storedIds = async (deviceId: string) =>
      (await store.queryEvents({ device: deviceId, limit: 1000 })).events.map((e) => `${String(e.seq)}:${String(e.id)}`).sort();

    it('takes a resend of a stored event (same seq, same id) as a resend, however it is grouped', async () => {
      const batch = [1, 2, 3].map((seq) => eventFor('dev-a', seq));
      await store.insertEvents('dev-a', batch, T0);
      const results = await store.insertEventBatches(
        [
          { deviceId: 'dev-a', events: [batch[2]!] },
          { deviceId: 'dev-a', events: [...batch, eventFor('dev-a', 4)] },
        ],
        T0,
      );
      expect(results).toEqual([
        { inserted: 0, lastSeq: 3 },
        { inserted: 1, lastSeq: 4 },
      ]);
      expect(await store.countEvents()).toBe(4);
    });

    it('refuses a batch whole when one of its seqs is stored under another event id, and leaves the other batches of the transaction alone', async () => {
      const first = [eventFor('dev-a', 1), eventFor('dev-a', 2)];
      await store.insertEvents('dev-a', first, T0);
      const before = await storedIds('dev-a');
      const software = { ...eventFor('dev-a', 3), type: 'software.installed', data: { name: 'nmap', version: '7', source: 'dpkg' } } as EventEnvelope;
      const results = await store.insertEventBatches(
        [
          { deviceId: 'dev-b', events: [eventFor('dev-b', 1)] },
          // seq 1 is a true resend, seq 2 is another event under a stored seq.
          { deviceId: 'dev-a', events: [first[0]!, eventFor('dev-a', 2), software, eventFor('dev-a', 4)] },
          { deviceId: 'dev-b', events: [eventFor('dev-b', 2)] },
        ],
        inAnHour,
      );
      expect(results).toEqual([
        { inserted: 1, lastSeq: 1 },
        { inserted: 0, lastSeq: 2, refused: { code: 'INV_ERR_SEQ_CONFLICT', seq: 2 } },
        { inserted: 1, lastSeq: 2 },
      ]);
      expect(await storedIds('dev-a')).toEqual(before);
      expect((await store.deviceAuth('dev-a'))?.lastSeq).toBe(2);
      expect((await store.listSoftware('dev-a', { limit: 100 })).software).toEqual([]);
      expect(await store.countEvents()).toBe(4);
    });

    it('refuses two different events under one seq within a batch', async () => {
      const result = await store.insertEvents('dev-a', [eventFor('dev-a', 7), eventFor('dev-a', 7)], T0);
      expect(result).toEqual({ inserted: 0, lastSeq: 0, refused: { code: 'INV_ERR_SEQ_CONFLICT', seq: 7 } });
      expect(await store.countEvents()).toBe(0);
    });

    it('stores a never-stored seq below the highest (a late batch) and keeps the highest', async () => {
      await store.insertEvents('dev-a', [eventFor('dev-a', 1), eventFor('dev-a', 10)], T0);
      expect(await store.insertEvents('dev-a', [eventFor('dev-a', 5)], T0)).toEqual({ inserted: 1, lastSeq: 10 });
      await store.insertEvents('dev-a', [eventFor('dev-a', Number.MAX_SAFE_INTEGER)], T0);
      expect(await store.insertEvents('dev-a', [eventFor('dev-a', 6)], T0)).toEqual({ inserted: 1, lastSeq: Number.MAX_SAFE_INTEGER });
      expect((await store.deviceAuth('dev-a'))?.lastSeq).toBe(Number.MAX_SAFE_INTEGER);
      expect(await store.countEvents()).toBe(5);
    });

    it("refuses a revoked device's events in the ingest transaction itself, and stores the others'", async () => {
      await store.insertEvents('dev-a', [eventFor('dev-a', 1)], T0);
      await store.revokeDevice('dev-a', T0);
      const results = await store.insertEventBatches(
        [
          { deviceId: 'dev-a', events: [eventFor('dev-a', 2)] },
          { deviceId: 'dev-b', events: [eventFor('dev-b', 1)] },
        ],
        inAnHour,
      );
      expect(results).toEqual([
        { inserted: 0, lastSeq: 1, refused: { code: 'INV_ERR_DEVICE_REVOKED' } },
        { inserted: 1, lastSeq: 1 },
      ]);
      expect((await store.deviceAuth('dev-a'))?.lastSeq).toBe(1);
      expect((await store.listDevices()).find((d) => d.id === 'dev-a')?.lastSeen).toBe(T0);
      expect(await store.countEvents()).toBe(2);
    });

    /*
     * A batch whose seqs all rise above the device's highest stored one is the usual case, and the
     * SQLite store takes it by a quicker path: several rows per statement, no savepoint (issue 12
     * item 8). These hold that path to everything the careful one promises, at its edges: batches
     * longer than one statement, batches that only partly rise above what is stored, and resends.
     */
    it('stores a 200-event batch whole and in order, bodies as sent, software among it applied', async () => {
      const batch = Array.from({ length: 200 }, (_, i) =>
        [64, 65, 129, 200].includes(i + 1) ? installed(i + 1, { name: `program-${i + 1}` }) : eventFor('dev-a', i + 1),
      );
      expect(await store.insertEvents('dev-a', batch, inAnHour)).toEqual({ inserted: 200, lastSeq: 200 });
      const stored = (await store.queryEvents({ device: 'dev-a', limit: 1000 })).events;
      expect(stored).toEqual(batch.map((e) => ({ ...e, receivedAt: inAnHour })));
      expect((await store.deviceAuth('dev-a'))?.lastSeq).toBe(200);
      expect((await store.listSoftware('dev-a', { limit: 100 })).software.map((p) => p.name)).toEqual([
        'program-129',
        'program-200',
        'program-64',
        'program-65',
      ]);
      expect(await store.insertEvents('dev-a', batch, inAnHour)).toEqual({ inserted: 0, lastSeq: 200 });
      expect(await store.countEvents()).toBe(200);
    });

    it('takes a batch that straddles the highest stored seq: the resent part once, the rest stored', async () => {
      const first = Array.from({ length: 10 }, (_, i) => eventFor('dev-a', i + 1));
      await store.insertEvents('dev-a', first, T0);
      const straddling = [...first.slice(7), ...Array.from({ length: 5 }, (_, i) => eventFor('dev-a', 11 + i))];
      expect(await store.insertEvents('dev-a', straddling, T0)).toEqual({ inserted: 5, lastSeq: 15 });
      // Straddling with another event under a stored seq: refused whole, the new seq above it not kept.
      const conflicting = [eventFor('dev-a', 15), eventFor('dev-a', 16)];
      expect(await store.insertEvents('dev-a', conflicting, T0)).toEqual({ inserted: 0, lastSeq: 15, refused: { code: 'INV_ERR_SEQ_CONFLICT', seq: 15 } });
      expect(await storedIds('dev-a')).toEqual([...first, ...straddling.slice(3)].map((e) => `${e.seq}:${e.id}`).sort());
      expect((await store.deviceAuth('dev-a'))?.lastSeq).toBe(15);
    });

    it('tells batches of one device in one transaction apart: the next one above, a resend of the one before, a conflict with it', async () => {
      const a = [1, 2, 3].map((seq) => eventFor('dev-a', seq));
      const b = [4, 5].map((seq) => eventFor('dev-a', seq));
      const results = await store.insertEventBatches(
        [
          { deviceId: 'dev-a', events: a },
          { deviceId: 'dev-a', events: b },
          { deviceId: 'dev-a', events: [a[2]!, b[0]!] },
          { deviceId: 'dev-a', events: [eventFor('dev-a', 5), eventFor('dev-a', 6)] },
          { deviceId: 'dev-a', events: [eventFor('dev-a', 6)] },
        ],
        T0,
      );
      expect(results).toEqual([
        { inserted: 3, lastSeq: 3 },
        { inserted: 2, lastSeq: 5 },
        { inserted: 0, lastSeq: 5 },
        { inserted: 0, lastSeq: 5, refused: { code: 'INV_ERR_SEQ_CONFLICT', seq: 5 } },
        { inserted: 1, lastSeq: 6 },
      ]);
      expect(await store.countEvents()).toBe(6);
    });

    it('judges what is new by the events stored, for a device it has no row for too', async () => {
      // No device row, so no last_seq: a resend must still be found a resend, not stored twice or failed.
      const batch = [1, 2].map((seq) => eventFor('dev-unenrolled', seq));
      expect((await store.insertEvents('dev-unenrolled', batch, T0)).inserted).toBe(2);
      expect((await store.insertEvents('dev-unenrolled', batch, T0)).inserted).toBe(0);
      expect((await store.insertEvents('dev-unenrolled', [eventFor('dev-unenrolled', 2)], T0)).refused).toEqual({ code: 'INV_ERR_SEQ_CONFLICT', seq: 2 });
      expect(await store.countEvents()).toBe(2);
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

  describe('login leases', () => {
    /** The fake clock: every call names its own `now`; nothing sleeps. */
    const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString();
    const claim = (deviceId: string, sessionId: string, overrides: Partial<Parameters<CollectorStore['claimLease']>[0]> = {}) =>
      store.claimLease({
        deviceId,
        hostname: `HOST-${deviceId}`,
        user: 'amy.p',
        sessionId,
        role: 'pupil',
        now: T0,
        leaseSeconds: 300,
        limit: 2,
        ...overrides,
      });
    const live = async (query: Omit<Parameters<CollectorStore['liveLeases']>[0], 'now'> = {}, now = T0) =>
      (await store.liveLeases({ ...query, now })).map((l) => `${l.deviceId}/${l.sessionId}`);

    it("grant up to the limit of distinct devices and refuse the next, listing the user's other leases", async () => {
      expect(await claim('dev-1', 's-1')).toEqual({ granted: true, leases: [], evicted: null, deviceFull: false });
      expect(await claim('dev-2', 's-2', { now: at(10) })).toEqual({
        granted: true,
        leases: [{ deviceId: 'dev-1', hostname: 'HOST-dev-1', sessionId: 's-1', since: T0 }],
        evicted: null,
        deviceFull: false,
      });

      const refused = await claim('dev-3', 's-3', { now: at(20) });

      expect(refused).toEqual({
        granted: false,
        leases: [
          { deviceId: 'dev-1', hostname: 'HOST-dev-1', sessionId: 's-1', since: T0 },
          { deviceId: 'dev-2', hostname: 'HOST-dev-2', sessionId: 's-2', since: at(10) },
        ],
        evicted: null,
        deviceFull: false,
      });
      // A refused claim leaves no lease behind.
      expect(await live({ user: 'amy.p' }, at(20))).toEqual(['dev-1/s-1', 'dev-2/s-2']);
    });

    it('count devices, not sessions: another session on a device already held is granted', async () => {
      await claim('dev-1', 's-1');
      await claim('dev-2', 's-1');

      const secondSessionHere = await claim('dev-1', 's-7');

      expect(secondSessionHere.granted).toBe(true);
      expect(secondSessionHere.leases.map((l) => `${l.deviceId}/${l.sessionId}`)).toEqual(['dev-1/s-1', 'dev-2/s-1']);
      expect((await claim('dev-3', 's-1')).granted).toBe(false);
    });

    it('treat a repeated claim as the same lease: granted again and extended, `since` kept', async () => {
      await claim('dev-1', 's-1');
      await claim('dev-2', 's-2');

      const again = await claim('dev-1', 's-1', { now: at(200) });

      expect(again.granted).toBe(true);
      expect(await store.liveLeases({ deviceId: 'dev-1', now: at(200) })).toEqual([
        { deviceId: 'dev-1', sessionId: 's-1', user: 'amy.p', role: 'pupil', hostname: 'HOST-dev-1', since: T0, expiresAt: at(500) },
      ]);
    });

    it('compare user names in any case and keep the name as the device gave it', async () => {
      await claim('dev-1', 's-1', { user: 'Amy.P' });
      await claim('dev-2', 's-1', { user: 'AMY.P' });

      expect((await claim('dev-3', 's-1', { user: 'amy.p' })).granted).toBe(false);
      expect((await store.liveLeases({ user: 'aMy.p', now: T0 })).map((l) => l.user)).toEqual(['Amy.P', 'AMY.P']);
      expect((await claim('dev-3', 's-1', { user: 'bob' })).granted).toBe(true);
    });

    it('always grant, and still record, when there is no limit', async () => {
      for (const device of ['dev-1', 'dev-2', 'dev-3', 'dev-4']) expect((await claim(device, 's-1', { limit: null })).granted).toBe(true);

      expect(await live({ user: 'amy.p' })).toEqual(['dev-1/s-1', 'dev-2/s-1', 'dev-3/s-1', 'dev-4/s-1']);
    });

    it('stop counting a lease once it expires, at exactly expiresAt', async () => {
      await claim('dev-1', 's-1', { leaseSeconds: 60 });
      await claim('dev-2', 's-1', { leaseSeconds: 600 });
      expect((await claim('dev-3', 's-1', { now: at(59) })).granted).toBe(false);

      const afterExpiry = await claim('dev-3', 's-1', { now: at(60) });

      expect(afterExpiry).toEqual({
        granted: true,
        leases: [{ deviceId: 'dev-2', hostname: 'HOST-dev-2', sessionId: 's-1', since: T0 }],
        evicted: null,
        deviceFull: false,
      });
      expect(await live({}, at(60))).toEqual(['dev-2/s-1', 'dev-3/s-1']);
    });

    it("renew only the device's own live leases, and never revive a dead one", async () => {
      await claim('dev-1', 's-1', { leaseSeconds: 60 });
      await claim('dev-1', 's-2', { leaseSeconds: 60, user: 'bob' });
      await claim('dev-2', 's-1', { leaseSeconds: 60, user: 'cat' });

      // dev-2 names dev-1's sessions: they are not its own, so nothing changes.
      expect(await store.renewLeases('dev-2', ['s-2'], at(30), 60)).toEqual([]);
      expect((await store.renewLeases('dev-1', ['s-1', 's-2', 's-1', 's-nobody'], at(30), 60)).sort()).toEqual(['s-1', 's-2']);
      expect(await live({}, at(75))).toEqual(['dev-1/s-1', 'dev-1/s-2']);

      expect(await store.renewLeases('dev-2', ['s-1'], at(75), 60)).toEqual([]);
      expect(await live({ deviceId: 'dev-2' }, at(75))).toEqual([]);
      expect(await store.renewLeases('dev-1', [], at(75), 60)).toEqual([]);
    });

    it("release only the naming device's lease, freeing its place", async () => {
      await claim('dev-1', 's-1');
      await claim('dev-2', 's-1');

      expect(await store.releaseLease('dev-3', 's-1')).toBe(false);
      expect(await live({ user: 'amy.p' })).toEqual(['dev-1/s-1', 'dev-2/s-1']);
      expect(await store.releaseLease('dev-1', 's-1')).toBe(true);
      expect(await store.releaseLease('dev-1', 's-1')).toBe(false);

      expect((await claim('dev-3', 's-1')).granted).toBe(true);
    });

    it('list live leases by user, by device, or all, and drop the dead ones', async () => {
      await claim('dev-1', 's-1', { leaseSeconds: 60 });
      await claim('dev-1', 's-2', { user: 'bob', now: at(1) });
      await claim('dev-2', 's-1', { user: 'Bob', now: at(2) });

      expect(await live()).toEqual(['dev-1/s-1', 'dev-1/s-2', 'dev-2/s-1']);
      expect(await live({ user: 'BOB' })).toEqual(['dev-1/s-2', 'dev-2/s-1']);
      expect(await live({ deviceId: 'dev-1' })).toEqual(['dev-1/s-1', 'dev-1/s-2']);
      expect(await live({ user: 'bob', deviceId: 'dev-2' })).toEqual(['dev-2/s-1']);
      expect(await live({ user: 'nobody' })).toEqual([]);

      expect(await store.dropExpiredLeases(at(60))).toBe(1);
      expect(await store.dropExpiredLeases(at(60))).toBe(0);
      expect(await live({}, T0)).toEqual(['dev-1/s-2', 'dev-2/s-1']);
    });

    it("replace another user's lease on a session the device now says is this user's", async () => {
      await claim('dev-1', 's-1', { user: 'bob' });

      expect((await claim('dev-1', 's-1', { user: 'amy.p', now: at(5) })).granted).toBe(true);

      expect(await store.liveLeases({ deviceId: 'dev-1', now: at(5) })).toEqual([expect.objectContaining({ sessionId: 's-1', user: 'amy.p', since: at(5) })]);
      expect(await live({ user: 'bob' }, at(5))).toEqual([]);
    });

    it('give a refused claim one reference per lease it lists, and no reference to a granted one or without refSeconds', async () => {
      await claim('dev-1', 's-1', { refSeconds: 120 });
      const granted = await claim('dev-2', 's-1', { refSeconds: 120 });
      const bare = await claim('dev-3', 's-1');

      const refused = await claim('dev-3', 's-1', { refSeconds: 120 });

      expect(granted.leases.map((l) => l.ref)).toEqual([undefined]);
      expect(bare.leases.map((l) => l.ref)).toEqual([undefined, undefined]);
      expect(refused.leases).toEqual([
        { deviceId: 'dev-1', hostname: 'HOST-dev-1', sessionId: 's-1', since: T0, ref: expect.stringMatching(/^ev-[A-Za-z0-9_-]{22}$/) },
        { deviceId: 'dev-2', hostname: 'HOST-dev-2', sessionId: 's-1', since: T0, ref: expect.stringMatching(/^ev-[A-Za-z0-9_-]{22}$/) },
      ]);
      expect(refused.leases[0]!.ref).not.toBe(refused.leases[1]!.ref);
    });

    it("end the lease a reference names, in the same step as the grant, only for the claim's own device, session and user, once, in time", async () => {
      await claim('dev-1', 's-1');
      await claim('dev-2', 's-1');
      const refused = await claim('dev-3', 's-1', { refSeconds: 120 });
      const [toDev1, toDev2] = refused.leases.map((l) => l.ref!);
      await claim('dev-4', 's-1', { user: 'bob' });

      // Another device, another session, another user, an unknown reference: the claim alone, refused.
      for (const wrong of [
        claim('dev-4', 's-1', { evict: { ref: toDev1! } }),
        claim('dev-3', 's-2', { evict: { ref: toDev1! } }),
        claim('dev-3', 's-1', { user: 'bob', evict: { ref: toDev1! } }),
        claim('dev-3', 's-1', { evict: { ref: 'ev-unknown' } }),
      ]) {
        expect(await wrong).toMatchObject({ evicted: null });
      }
      expect(await live({ user: 'amy.p' })).toEqual(['dev-1/s-1', 'dev-2/s-1']);

      const evicting = await claim('dev-3', 's-1', { now: at(5), evict: { ref: toDev1! } });

      expect(evicting).toEqual({
        granted: true,
        evicted: { deviceId: 'dev-1', sessionId: 's-1', hostname: 'HOST-dev-1' },
        leases: [{ deviceId: 'dev-2', hostname: 'HOST-dev-2', sessionId: 's-1', since: T0 }],
        deviceFull: false,
      });
      expect(await live({ user: 'amy.p' }, at(5))).toEqual(['dev-2/s-1', 'dev-3/s-1']);
      // Spent, with the refusal's other reference.
      expect(await claim('dev-3', 's-1', { now: at(6), evict: { ref: toDev1! } })).toMatchObject({ evicted: null });
      expect(await claim('dev-3', 's-1', { now: at(6), evict: { ref: toDev2! } })).toMatchObject({ granted: true, evicted: null });
      expect(await live({ user: 'amy.p' }, at(6))).toEqual(['dev-2/s-1', 'dev-3/s-1']);
    });

    it('spend no reference after refSeconds, and replace a refusal’s references with the next refusal’s', async () => {
      await claim('dev-1', 's-1');
      await claim('dev-2', 's-1');
      const first = await claim('dev-3', 's-1', { refSeconds: 120 });
      const second = await claim('dev-3', 's-1', { now: at(10), refSeconds: 120 });

      expect(await claim('dev-3', 's-1', { now: at(20), evict: { ref: first.leases[0]!.ref! } })).toMatchObject({ granted: false, evicted: null });
      expect(await claim('dev-3', 's-1', { now: at(130), evict: { ref: second.leases[0]!.ref! } })).toMatchObject({ granted: false, evicted: null });
      expect(await store.dropExpiredLeases(at(130))).toBe(0);
      expect(await live({ user: 'amy.p' }, at(130))).toEqual(['dev-1/s-1', 'dev-2/s-1']);
    });

    it('hold at most maxUsersPerDevice users on one device, refusing a new user with deviceFull and leaving everything else as it was', async () => {
      const cap = { maxUsersPerDevice: 2 };
      await claim('dev-r', 's-1', { user: 'bob', ...cap });
      await claim('dev-r', 's-2', { user: 'cat', ...cap });
      await claim('dev-1', 's-1');
      await claim('dev-2', 's-1');
      const refused = await claim('dev-3', 's-1', { refSeconds: 120 });

      // A user already there, and the session being taken over, do not count against the cap.
      expect(await claim('dev-r', 's-3', { user: 'bob', ...cap })).toMatchObject({ granted: true, deviceFull: false });
      expect(await claim('dev-r', 's-2', { user: 'dan', ...cap })).toMatchObject({ granted: true, deviceFull: false });
      const full = await claim('dev-r', 's-4', { ...cap, refSeconds: 120 });

      expect(full).toMatchObject({ granted: false, deviceFull: true, evicted: null });
      expect(full.leases.map((l) => [l.deviceId, l.ref])).toEqual([
        ['dev-1', undefined],
        ['dev-2', undefined],
      ]);
      expect(await live({ deviceId: 'dev-r' })).toEqual(['dev-r/s-1', 'dev-r/s-2', 'dev-r/s-3']);
      // A capped claim that is full evicts nothing, and its reference is spent.
      const evictingWhenFull = await claim('dev-3', 's-1', { ...cap, maxUsersPerDevice: 0, evict: { ref: refused.leases[0]!.ref! } });
      expect(evictingWhenFull).toMatchObject({ granted: false, deviceFull: true, evicted: null });
      expect(await live({ user: 'amy.p' })).toEqual(['dev-1/s-1', 'dev-2/s-1']);
      expect(await claim('dev-3', 's-1', { evict: { ref: refused.leases[0]!.ref! } })).toMatchObject({ evicted: null });
    });

    it('grant exactly `limit` devices per user when claims race', async () => {
      const users = Array.from({ length: 40 }, (_, i) => `user-${i}`);
      const claims = users.flatMap((user, i) =>
        ['dev-a', 'dev-b', 'dev-c'].map((deviceId, d) => claim(deviceId, `s-${i}`, { user: d === 1 ? user.toUpperCase() : user })),
      );

      const verdicts = await Promise.all(claims);

      expect(verdicts.filter((v) => v.granted)).toHaveLength(2 * users.length);
      const leases = await store.liveLeases({ now: T0 });
      const perUser = new Map<string, number>();
      for (const l of leases) perUser.set(l.user.toLowerCase(), (perUser.get(l.user.toLowerCase()) ?? 0) + 1);
      expect([...perUser.values()]).toEqual(Array(users.length).fill(2));
    });
  });

  describe('installed software', () => {
    beforeEach(async () => {
      await enroll(store, 'dev-a');
      await enroll(store, 'dev-b');
    });

    const programs = async (deviceId = 'dev-a', q?: string) =>
      (await store.listSoftware(deviceId, { limit: 1000, ...(q === undefined ? {} : { q }) })).software;
    const list = async (deviceId = 'dev-a', q?: string) =>
      (await programs(deviceId, q)).map((p) => `${p.name}${p.version === null ? '' : ` ${p.version}`} (${p.source})`);

    it('follows software.installed and software.removed: upgrades, removals, sorted by name in any case', async () => {
      await store.insertEvents(
        'dev-a',
        [
          installed(1, { name: 'vlc', version: '3.0.20', publisher: 'VideoLAN' }),
          installed(2, { name: 'GIMP', version: '2.10.34', publisher: 'The GIMP Team' }),
          installed(3, { name: 'audacity', version: '3.2.4' }),
          installed(4, { name: 'Zoom Workplace', version: undefined, source: 'registry:hku:S-1-5-21-1-2-3-1001' }),
          installed(5, { name: 'bash', version: '5.2.15', source: 'dpkg' }),
        ],
        T0,
      );
      expect(await list()).toEqual([
        'audacity 3.2.4 (dpkg)',
        'bash 5.2.15 (dpkg)',
        'GIMP 2.10.34 (dpkg)',
        'vlc 3.0.20 (dpkg)',
        'Zoom Workplace (registry:hku:S-1-5-21-1-2-3-1001)',
      ]);
      // An upgrade is two events; a removal without a version removes the program registered without one.
      await store.insertEvents(
        'dev-a',
        [
          removed(6, { name: 'vlc', version: '3.0.20' }),
          installed(7, { name: 'vlc', version: '3.0.21', publisher: 'VideoLAN' }),
          removed(8, { name: 'Zoom Workplace', version: undefined, source: 'registry:hku:S-1-5-21-1-2-3-1001' }),
          removed(9, { name: 'never-installed', version: '1' }),
        ],
        inAnHour,
      );
      expect(await list()).toEqual(['audacity 3.2.4 (dpkg)', 'bash 5.2.15 (dpkg)', 'GIMP 2.10.34 (dpkg)', 'vlc 3.0.21 (dpkg)']);
      expect((await programs()).find((p) => p.name === 'vlc')).toEqual({
        name: 'vlc',
        version: '3.0.21',
        publisher: 'VideoLAN',
        source: 'dpkg',
        since: at(7),
      });
      expect(await list('dev-b')).toEqual([]);
      expect(await list('dev-nobody')).toEqual([]);
    });

    it('is unchanged by a resend, however often, even of an install that was later removed', async () => {
      const first = [installed(1, { name: 'GIMP' }), installed(2, { name: 'vlc' })];
      const second = [removed(3, { name: 'GIMP' })];
      await store.insertEvents('dev-a', first, T0);
      await store.insertEvents('dev-a', second, T0);
      // The agent lost the ack and sends everything again, in any grouping.
      await store.insertEvents('dev-a', [...first, ...second], T0);
      await store.insertEvents('dev-a', first, T0);
      await Promise.all([store.insertEvents('dev-a', first, T0), store.insertEvents('dev-a', [...first, ...second], T0)]);
      expect(await list()).toEqual(['vlc 1.0 (dpkg)']);
      expect(await store.countEvents()).toBe(3);
    });

    it('ends as the events say in sequence order, whatever order they were stored in', async () => {
      // Two collector processes storing overlapping resends can commit a later batch first.
      await store.insertEvents('dev-a', [removed(5, { name: 'GIMP' }), installed(6, { name: 'vlc' })], T0);
      await store.insertEvents('dev-a', [installed(3, { name: 'GIMP' }), removed(4, { name: 'vlc' }), installed(7, { name: 'bash' })], T0);
      expect(await list()).toEqual(['bash 1.0 (dpkg)', 'vlc 1.0 (dpkg)']);
      // Within one batch too: the later of two events about one program wins.
      await store.insertEvents(
        'dev-a',
        [installed(9, { name: 'nmap' }), removed(8, { name: 'nmap' }), removed(10, { name: 'bash' }), installed(11, { name: 'bash' })],
        T0,
      );
      expect(await list()).toEqual(['bash 1.0 (dpkg)', 'nmap 1.0 (dpkg)', 'vlc 1.0 (dpkg)']);
    });

    it('keeps `since` while a program stays installed, takes a new publisher, and keeps devices apart', async () => {
      await store.insertEvents('dev-a', [installed(1, { name: 'Zoom', publisher: 'Zoom' })], T0);
      await store.insertEvents('dev-b', [installed(1, { name: 'Zoom', publisher: 'Zoom' })], T0);
      await store.insertEvents('dev-a', [installed(2, { name: 'Zoom', publisher: 'Zoom Video Communications, Inc.' })], T0);
      expect(await programs()).toEqual([{ name: 'Zoom', version: '1.0', publisher: 'Zoom Video Communications, Inc.', source: 'dpkg', since: at(1) }]);
      await store.insertEvents('dev-a', [removed(3, { name: 'Zoom' }), installed(4, { name: 'Zoom' })], T0);
      expect((await programs())[0]).toMatchObject({ since: at(4), publisher: null });
      expect(await programs('dev-b')).toEqual([{ name: 'Zoom', version: '1.0', publisher: 'Zoom', source: 'dpkg', since: at(1) }]);
    });

    it('filters by part of the name in any case, including letters beyond ASCII, and keeps hostile names as text', async () => {
      const long = `${'Ж'.repeat(250)}<b>`;
      await store.insertEvents(
        'dev-a',
        [
          installed(1, { name: 'Microsoft Visual C++ 2015-2022 Redistributable (x64)' }),
          installed(2, { name: 'ÉCOLE Maths' }),
          installed(3, { name: "<script>alert('x')</script>", version: undefined }),
          installed(4, { name: long, version: 'я'.repeat(256), source: `registry:hku:${'9'.repeat(200)}` }),
        ],
        T0,
      );
      expect(await list('dev-a', 'c++')).toEqual(['Microsoft Visual C++ 2015-2022 Redistributable (x64) 1.0 (dpkg)']);
      expect(await list('dev-a', 'école')).toEqual(['ÉCOLE Maths 1.0 (dpkg)']);
      expect(await list('dev-a', 'SCRIPT')).toEqual(["<script>alert('x')</script> (dpkg)"]);
      expect((await programs('dev-a', 'жж')).map((p) => p.name)).toEqual([long]);
      expect(await list('dev-a', 'nothing like it')).toEqual([]);
    });

    it('pages through the list in order, each program once, with or without a filter', async () => {
      const names = Array.from({ length: 25 }, (_, i) => `${i % 2 ? 'Tool' : 'tool'}-${String(i).padStart(2, '0')}`);
      await store.insertEvents(
        'dev-a',
        names.map((name, i) => installed(i + 1, { name })),
        T0,
      );
      await store.insertEvents('dev-a', [installed(26, { name: 'tool-07', version: '2.0' }), installed(27, { name: 'Other' })], T0);
      const pages = async (q?: string) => {
        const seen: string[][] = [];
        let cursor: string | undefined;
        for (let page = 0; page < 20; page++) {
          const result = await store.listSoftware('dev-a', { limit: 4, ...(q ? { q } : {}), ...(cursor ? { cursor } : {}) });
          seen.push(result.software.map((p) => `${p.name} ${p.version ?? ''}`));
          if (!result.next) break;
          cursor = result.next;
        }
        return seen;
      };
      const all = await pages();
      expect(all.every((page) => page.length <= 4)).toBe(true);
      expect(all.flat()).toEqual(await list().then((l) => l.map((x) => x.replace(' (dpkg)', ''))));
      expect(all.flat()).toHaveLength(27);
      expect(all.flat()[0]).toBe('Other 1.0');
      // Without regard to case, then by name and version: Tool-07 (1.0) and tool-07 (2.0) are two programs.
      expect((await pages('TOOL-0')).flat()).toEqual([
        'tool-00 1.0',
        'Tool-01 1.0',
        'tool-02 1.0',
        'Tool-03 1.0',
        'tool-04 1.0',
        'Tool-05 1.0',
        'tool-06 1.0',
        'Tool-07 1.0',
        'tool-07 2.0',
        'tool-08 1.0',
        'Tool-09 1.0',
      ]);
      // The last page says there is no next one; a list that fits one page has none either.
      expect((await store.listSoftware('dev-a', { limit: 100 })).next).toBeNull();
      expect((await store.listSoftware('dev-b', { limit: 1 })).software).toEqual([]);
    });
  });

  describe('an inventory past the cap (issue 13, item 9)', () => {
    const CAP = 5;
    let capped: CollectorStore;
    beforeEach(async () => {
      await enroll(store, 'dev-a');
      await enroll(store, 'dev-b');
      capped = under.open(TEST_SECRET_KEY, { maxProgramsPerDevice: CAP });
      await capped.migrate();
    });
    afterEach(async () => capped.close());

    const names = async (deviceId = 'dev-a') => (await capped.listSoftware(deviceId, { limit: 100 })).software.map((p) => p.name);

    it('lists at most the cap per device: the rest of the batch is stored as events, and the refusal is counted', async () => {
      const flood = Array.from({ length: 8 }, (_, i) => installed(i + 1, { name: `fake-${i + 1}` }));
      const batch = [...flood.slice(0, 4), eventFor('dev-a', 100), ...flood.slice(4)];
      const result = await capped.insertEvents('dev-a', batch, T0);
      expect(result).toEqual({ inserted: 9, lastSeq: 100, softwareRefused: { programs: 3, newlyFull: true, cap: CAP } });
      expect(await capped.countEvents()).toBe(9);
      // The earliest by sequence number got the places.
      expect(await names()).toEqual(['fake-1', 'fake-2', 'fake-3', 'fake-4', 'fake-5']);
      // A resend changes nothing and refuses nothing again; another device has its own list.
      expect(await capped.insertEvents('dev-a', batch, T0)).toEqual({ inserted: 0, lastSeq: 100 });
      expect((await capped.insertEvents('dev-b', [installed(1, { name: 'bash' }, 'dev-b')], T0)).softwareRefused).toBeUndefined();
      expect(await names('dev-b')).toEqual(['bash']);
    });

    it('still takes changes to listed programs when full, gives a freed place to the next program, and says full again only after it was not', async () => {
      await capped.insertEvents(
        'dev-a',
        Array.from({ length: 5 }, (_, i) => installed(i + 1, { name: `p-${i + 1}` })),
        T0,
      );
      // Full, not over: a new publisher for a listed program is no new program.
      expect((await capped.insertEvents('dev-a', [installed(6, { name: 'p-1', publisher: 'Someone' })], T0)).softwareRefused).toBeUndefined();
      expect((await capped.insertEvents('dev-a', [installed(7, { name: 'p-6' })], T0)).softwareRefused).toEqual({ programs: 1, newlyFull: true, cap: CAP });
      expect((await capped.insertEvents('dev-a', [installed(8, { name: 'p-7' })], T0)).softwareRefused).toEqual({ programs: 1, newlyFull: false, cap: CAP });
      // Removed, then installed within one batch: the removal frees the place the install takes.
      expect((await capped.insertEvents('dev-a', [removed(9, { name: 'p-2' }), installed(10, { name: 'p-8' })], T0)).softwareRefused).toBeUndefined();
      expect(await names()).toEqual(['p-1', 'p-3', 'p-4', 'p-5', 'p-8']);
      expect((await programsOf(capped)).find((p) => p.name === 'p-1')?.publisher).toBe('Someone');
      await capped.insertEvents('dev-a', [removed(11, { name: 'p-3' })], T0);
      expect((await capped.insertEvents('dev-a', [installed(12, { name: 'p-9' }), installed(13, { name: 'p-10' })], T0)).softwareRefused).toEqual({
        programs: 1,
        newlyFull: true,
        cap: CAP,
      });
    });

    const programsOf = async (s: CollectorStore) => (await s.listSoftware('dev-a', { limit: 100 })).software;
  });
}
