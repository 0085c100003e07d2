import { randomUUID } from 'node:crypto';
import { hashToken, newToken } from '../../collector/device-auth';
import type { EventEnvelope } from '../../shared/protocol';
import { type TestCollector, startTestCollector } from '../support/harness';

const T0 = '2026-11-23T09:00:00.000Z';

function program(deviceId: string, seq: number, name: string): EventEnvelope {
  return {
    id: randomUUID(),
    deviceId,
    seq,
    time: new Date(Date.parse(T0) + seq * 1000).toISOString(),
    type: 'software.installed',
    severity: 'info',
    data: { name, version: '1', source: 'dpkg' },
  } as EventEnvelope;
}

async function enroll(c: TestCollector, id: string, hostname: string, approval: 'pending' | 'approved' = 'approved'): Promise<void> {
  await c.store.enrollDevice({
    id,
    installationId: `inst-${id}`,
    secret: Buffer.alloc(32, 1),
    hostname,
    platform: 'linux',
    agentVersion: '1',
    tokenId: 't',
    now: T0,
    approval,
    enrolledFrom: null,
  });
}

/**
 * Every list the API serves comes in pages (issue 13, item 9: one computer's
 * software list answered 51 MB at once): `limit` (1 to 1000, default 100) and
 * `cursor`, the previous page's `next`, as /api/events and
 * /api/permission-requests always did.
 */
describe('the lists the HTTP API serves', () => {
  let c: TestCollector;
  let readonly: string;
  beforeEach(async () => {
    c = await startTestCollector();
    readonly = newToken('inv_api_');
    await c.store.createApiToken({ id: 'api-ro', tokenHash: hashToken(readonly), role: 'readonly', createdAt: T0 });
  });
  afterEach(async () => c.close());

  const get = async <T>(path: string, token: string | undefined = readonly): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${c.httpUrl}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as T };
  };

  /** Follows `next` to the end, at most 50 pages; returns each page's items. */
  async function walk<T>(path: string, field: string, limit: number): Promise<T[][]> {
    const pages: T[][] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 50; i++) {
      const sep = path.includes('?') ? '&' : '?';
      const { status, body } = await get<Record<string, unknown>>(`${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(status).toBe(200);
      pages.push(body[field] as T[]);
      cursor = body.next as string | null;
      if (cursor === null) return pages;
      expect(typeof cursor).toBe('string');
    }
    throw new Error('more than 50 pages');
  }

  it('pages the devices by hostname, each once, 100 at a time by default', async () => {
    for (let i = 0; i < 130; i++) await enroll(c, `dev-${String(i).padStart(3, '0')}`, `ROOM${i % 7}-${String(i).padStart(3, '0')}`);
    const first = await get<{ devices: Array<{ id: string; hostname: string }>; next: string | null }>('/api/devices');
    expect(first.status).toBe(200);
    expect(first.body.devices).toHaveLength(100);
    expect(typeof first.body.next).toBe('string');
    const pages = await walk<{ id: string; hostname: string }>('/api/devices', 'devices', 40);
    expect(pages.map((p) => p.length)).toEqual([40, 40, 40, 10]);
    const hostnames = pages.flat().map((d) => d.hostname);
    expect(hostnames).toEqual([...hostnames].sort());
    expect(new Set(pages.flat().map((d) => d.id)).size).toBe(130);
  });

  it('pages the devices waiting for approval: full pages of them only, and refuses an approval it does not know', async () => {
    for (let i = 0; i < 130; i++)
      await enroll(c, `dev-${String(i).padStart(3, '0')}`, `ROOM-${String(i).padStart(3, '0')}`, i % 5 === 0 ? 'pending' : 'approved');
    const pages = await walk<{ id: string; approval: string }>('/api/devices?approval=pending', 'devices', 10);
    expect(pages.map((p) => p.length)).toEqual([10, 10, 6]);
    expect(pages.flat().every((d) => d.approval === 'pending')).toBe(true);
    expect(new Set(pages.flat().map((d) => d.id)).size).toBe(26);
    const first = await get<{ devices: unknown[]; next: string | null }>('/api/devices?approval=pending');
    expect(first.body.devices).toHaveLength(26);
    expect(first.body.next).toBeNull();
    const bad = await get<{ error: { code: string } }>('/api/devices?approval=maybe');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INV_ERR_API_BAD_QUERY');
  });

  it("pages a device's software in name order, each program once, 100 at a time by default", async () => {
    await enroll(c, 'dev-a', 'CLASS3-01');
    const names = Array.from({ length: 250 }, (_, i) => `${i % 3 ? 'pkg' : 'Pkg'}-${String((i * 7919) % 1000).padStart(3, '0')}`);
    await c.store.insertEvents(
      'dev-a',
      names.map((n, i) => program('dev-a', i + 1, n)),
      T0,
    );
    const first = await get<{ deviceId: string; software: unknown[]; next: string | null }>('/api/devices/dev-a/software');
    expect(first.body.software).toHaveLength(100);
    expect(first.body.deviceId).toBe('dev-a');
    const pages = await walk<{ name: string }>('/api/devices/dev-a/software', 'software', 64);
    expect(pages.map((p) => p.length)).toEqual([64, 64, 64, 58]);
    expect(pages.flat().map((p) => p.name)).toEqual(
      [...names].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : a < b ? -1 : 1)),
    );
    // With the name filter too.
    const filtered = (await walk<{ name: string }>('/api/devices/dev-a/software?q=PKG-00', 'software', 3)).flat().map((p) => p.name);
    expect(filtered).toEqual(names.filter((n) => n.toLowerCase().startsWith('pkg-00')).sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1)));
    expect(filtered.length).toBeGreaterThan(3);
  });

  it('pages the live sessions oldest first, each once', async () => {
    for (let i = 0; i < 9; i++) {
      await enroll(c, `dev-${i}`, `LAB-${i}`);
      const verdict = await c.store.claimLease({
        deviceId: `dev-${i}`,
        hostname: `LAB-${i}`,
        user: `pupil-${i}`,
        sessionId: 's-1',
        role: 'pupil',
        now: new Date(Date.now() - (10 - i) * 1000).toISOString(),
        leaseSeconds: 3600,
        limit: 2,
      });
      expect(verdict.granted).toBe(true);
    }
    const pages = await walk<{ deviceId: string; since: string }>('/api/sessions', 'sessions', 4);
    expect(pages.map((p) => p.length)).toEqual([4, 4, 1]);
    expect(pages.flat().map((s) => s.deviceId)).toEqual(Array.from({ length: 9 }, (_, i) => `dev-${i}`));
    const first = await get<{ sessions: unknown[]; next: string | null }>('/api/sessions');
    expect(first.body.sessions).toHaveLength(9);
    expect(first.body.next).toBeNull();
    expect((await walk('/api/sessions?user=PUPIL-3', 'sessions', 1)).flat()).toHaveLength(1);
  });

  it.each([
    ['/api/devices', 'limit=0'],
    ['/api/devices', 'limit=1001'],
    ['/api/devices', 'cursor=not-ours'],
    ['/api/devices', 'colour=blue'],
    ['/api/devices/dev-a/software', 'limit=0'],
    ['/api/devices/dev-a/software', 'limit=5000'],
    ['/api/devices/dev-a/software', 'cursor=not-ours'],
    ['/api/sessions', 'limit=-1'],
    ['/api/sessions', 'cursor=not-ours'],
  ])('refuses %s?%s with 400 INV_ERR_API_BAD_QUERY', async (path, query) => {
    await enroll(c, 'dev-a', 'CLASS3-01');
    const { status, body } = await get<{ error: { code: string } }>(`${path}?${query}`);
    expect(status).toBe(400);
    expect(body.error.code).toBe('INV_ERR_API_BAD_QUERY');
  });

  it("refuses one list's cursor on another", async () => {
    for (let i = 0; i < 3; i++) await enroll(c, `dev-${i}`, `PC-${i}`);
    const devices = await get<{ next: string }>('/api/devices?limit=1');
    for (const path of ['/api/devices/dev-0/software', '/api/sessions', '/api/events', '/api/permission-requests']) {
      const { status, body } = await get<{ error: { code: string } }>(`${path}?cursor=${devices.body.next}`);
      expect([path, status, body.error.code]).toEqual([path, 400, 'INV_ERR_API_BAD_QUERY']);
    }
  });
});

describe('GET /health (issue 13, item 12)', () => {
  let c: TestCollector;
  beforeAll(async () => (c = await startTestCollector()));
  afterAll(async () => c.close());

  it('says only that the collector is up to anyone without a token', async () => {
    const asked: Array<Record<string, string>> = [{}, { authorization: 'Bearer inv_api_not-a-real-token-at-all' }];
    for (const headers of asked) {
      const res = await fetch(`${c.httpUrl}/health`, { headers });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok' });
    }
  });

  it('gives the store and version to a valid token', async () => {
    const res = await fetch(`${c.httpUrl}/health`, { headers: { authorization: `Bearer ${c.adminToken}` } });
    expect(await res.json()).toEqual({ status: 'ok', store: 'sqlite', version: '0.0.0-test' });
  });
});
