import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hashToken, newToken } from '../../collector/device-auth';
import { InventoryKeeper } from '../../agent/software/installed/inventory-keeper';
import { LinuxPackageInventory } from '../../agent/software/installed/linux/inventory-linux';
import type { InventorySnapshot, InventorySource } from '../../agent/software/installed/inventory-source';
import { createExecFileRunner } from '../../agent/os/command-runner';
import type { EventEnvelope } from '../../shared/protocol';
import { eventually } from '../support/cli';
import { RawClient, type TestCollector, silentLogger, startTestAgent, startTestCollector } from '../support/harness';

/** A device enrolled over a real connection, sending what the test says. */
async function enrolledDevice(c: TestCollector): Promise<{ client: RawClient; deviceId: string; send: (events: EventEnvelope[]) => Promise<void> }> {
  const client = new RawClient(c.agentUrl);
  await client.opened;
  client.send({
    v: 1,
    type: 'hello',
    agentVersion: '1',
    hostname: 'CLASS3-07',
    platform: 'linux',
    auth: { kind: 'enroll', token: await c.enrollmentToken(), installationId: `inst-${randomUUID()}` },
  });
  const { deviceId } = await client.next('enrolled');
  await client.next('welcome');
  const send = async (events: EventEnvelope[]) => {
    client.send({ v: 1, type: 'event.batch', events: events.map((e) => ({ ...e, deviceId })) });
    const ack = await client.next('ack');
    expect(ack.upToSeq).toBe(Math.max(...events.map((e) => e.seq)));
  };
  return { client, deviceId, send };
}

const T0 = Date.parse('2026-11-23T09:00:00.000Z');
function software(seq: number, type: 'software.installed' | 'software.removed', data: Record<string, string>): EventEnvelope {
  return { id: randomUUID(), deviceId: 'x', seq, time: new Date(T0 + seq * 1000).toISOString(), type, severity: 'notice', data } as EventEnvelope;
}

describe('GET /api/devices/:id/software, over HTTP on loopback', () => {
  let c: TestCollector;
  let readonlyToken: string;
  beforeEach(async () => {
    c = await startTestCollector();
    readonlyToken = newToken('inv_api_');
    await c.store.createApiToken({ id: 'api-ro', tokenHash: hashToken(readonlyToken), role: 'readonly', createdAt: new Date().toISOString() });
  });
  afterEach(async () => c.close());

  const get = (path: string, token?: string) => fetch(`${c.httpUrl}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });

  it("answers any valid token with the device's programs as its events left them, sorted by name, resends changing nothing", async () => {
    const { deviceId, send, client } = await enrolledDevice(c);
    const batch = [
      software(1, 'software.installed', { name: 'vlc', version: '3.0.20', publisher: 'VideoLAN', source: 'dpkg' }),
      software(2, 'software.installed', { name: 'GIMP', version: '2.10.34', publisher: 'The GIMP Team', source: 'dpkg' }),
      software(3, 'software.installed', { name: '<img src=x onerror=alert(1)>', source: 'registry:hku:S-1-5-21-1-2-3-1001' }),
      software(4, 'software.installed', { name: 'audacity', version: '3.2.4', source: 'dpkg' }),
      software(5, 'software.removed', { name: 'vlc', version: '3.0.20', source: 'dpkg' }),
      software(6, 'software.installed', { name: 'vlc', version: '3.0.21', publisher: 'VideoLAN', source: 'dpkg' }),
    ];
    await send(batch);
    // Delivery is at least once: the agent resends after a lost ack, in another grouping.
    await send(batch.slice(2));
    await send(batch);

    const res = await get(`/api/devices/${deviceId}/software`, readonlyToken);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = (await res.json()) as { deviceId: string; software: Array<Record<string, unknown>>; next: string | null };
    expect(body.next).toBeNull();
    expect(body.deviceId).toBe(deviceId);
    expect(body.software).toEqual([
      { name: '<img src=x onerror=alert(1)>', version: null, publisher: null, source: 'registry:hku:S-1-5-21-1-2-3-1001', since: '2026-11-23T09:00:03.000Z' },
      { name: 'audacity', version: '3.2.4', publisher: null, source: 'dpkg', since: '2026-11-23T09:00:04.000Z' },
      { name: 'GIMP', version: '2.10.34', publisher: 'The GIMP Team', source: 'dpkg', since: '2026-11-23T09:00:02.000Z' },
      { name: 'vlc', version: '3.0.21', publisher: 'VideoLAN', source: 'dpkg', since: '2026-11-23T09:00:06.000Z' },
    ]);
    expect(await c.store.countEvents()).toBe(6);

    const filtered = (await (await get(`/api/devices/${deviceId}/software?q=GiM`, c.adminToken)).json()) as { software: Array<{ name: string }> };
    expect(filtered.software.map((p) => p.name)).toEqual(['GIMP']);
    const none = (await (await get(`/api/devices/${deviceId}/software?q=${encodeURIComponent('no such program')}`, readonlyToken)).json()) as {
      software: unknown[];
    };
    expect(none.software).toEqual([]);
    client.ws.close();
  });

  it('is 404 for an unknown device, 401 without a valid token, 400 for a query it does not take', async () => {
    const { deviceId, client } = await enrolledDevice(c);
    // Known, with nothing reported yet.
    expect(await (await get(`/api/devices/${deviceId}/software`, readonlyToken)).json()).toEqual({ deviceId, software: [], next: null });

    const unknown = await get('/api/devices/dev-nobody/software', readonlyToken);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('INV_ERR_API_NOT_FOUND');

    for (const token of [undefined, 'inv_api_not-a-real-token-at-all']) {
      const res = await get(`/api/devices/${deviceId}/software`, token);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INV_ERR_API_UNAUTHORIZED');
    }

    for (const query of ['q=', `q=${'x'.repeat(257)}`, 'name=GIMP', 'q=a&limit=5000']) {
      const res = await get(`/api/devices/${deviceId}/software?${query}`, readonlyToken);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INV_ERR_API_BAD_QUERY');
    }
    client.ws.close();
  });
});

const hasDpkg = (() => {
  try {
    execFileSync('dpkg-query', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

(hasDpkg ? describe : describe.skip)(
  `the real agent's inventory, from dpkg-query to the API${hasDpkg ? '' : ' [skipped: dpkg-query is not installed here]'}`,
  () => {
    it('is what the keeper reported: every package, then without one the next look no longer sees', async () => {
      const c = await startTestCollector();
      const agent = await startTestAgent(c.agentUrl, await c.enrollmentToken());
      try {
        const real = new LinuxPackageInventory(createExecFileRunner());
        const hidden: { name?: string } = {};
        const source: InventorySource = {
          async list(): Promise<InventorySnapshot> {
            const s = await real.list();
            return { ...s, programs: s.programs.filter((p) => p.name !== hidden.name) };
          },
        };
        const keeper = new InventoryKeeper({ source, dataDir: agent.dataDir, record: (d) => agent.record(d), logger: silentLogger() });
        const first = await keeper.refresh();
        expect(first.ok).toBe(true);
        const deviceId = await eventually(async () => (await c.store.listDevices())[0]?.id);

        /** Every page of the list. */
        const listed = async () => {
          const all: Array<{ name: string; version: string | null; source: string }> = [];
          let cursor: string | null = null;
          for (let page = 0; page < 50; page++) {
            const res = await fetch(`${c.httpUrl}/api/devices/${deviceId}/software?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, {
              headers: { authorization: `Bearer ${c.adminToken}` },
            });
            const body = (await res.json()) as { software: Array<{ name: string; version: string | null; source: string }>; next: string | null };
            all.push(...body.software);
            if (!(cursor = body.next)) break;
          }
          return all;
        };
        const expected = keeper.programs.map((p) => `${p.name} ${p.version ?? ''} ${p.source}`).sort();
        await eventually(async () => ((await listed()).length === expected.length ? true : undefined));
        expect((await listed()).map((p) => `${p.name} ${p.version ?? ''} ${p.source}`).sort()).toEqual(expected);

        hidden.name = 'dpkg';
        expect(await keeper.refresh()).toMatchObject({ ok: true, removed: 1, installed: 0 });
        await eventually(async () => ((await listed()).some((p) => p.name === 'dpkg') ? undefined : true));
        expect((await listed()).length).toBe(expected.length - 1);
        await keeper.stop();
      } finally {
        await agent.stop('test');
        await c.close();
      }
    });
  },
);
