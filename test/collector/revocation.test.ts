import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import type { CollectorStore } from '../../collector/store/store';
import { proofFor } from '../../node-common/device-proof';
import type { EventEnvelope } from '../../shared/protocol';
import { eventually, startCli, tempDir } from '../support/cli';
import { RawClient, type TestCollector, freePort, startTestCollector } from '../support/harness';
import { describePostgres, freshSchema } from '../support/postgres';
import { sampleEvent } from '../support/samples';
import { TEST_SECRET_KEY } from '../support/secret-key';

const hello = (auth: object) => ({ v: 1, type: 'hello', agentVersion: '0.1.0', hostname: 'CLASS3-01', platform: 'linux', policyRevision: 1, auth });
const event = (deviceId: string, seq: number): EventEnvelope => ({ ...sampleEvent('usb.connected'), id: randomUUID(), deviceId, seq }) as EventEnvelope;
const batch = (events: EventEnvelope[]) => ({ v: 1, type: 'event.batch', events });
const errorCodes = (client: RawClient) => client.messages().flatMap((m) => (m.type === 'error' ? [m.error.code] : []));
const acks = (client: RawClient) => client.messages().filter((m) => m.type === 'ack');

interface Device {
  deviceId: string;
  secret: Buffer;
}

async function enroll(url: string, token: string): Promise<Device> {
  const client = new RawClient(url);
  await client.opened;
  client.send(hello({ kind: 'enroll', token, installationId: `inst-${randomUUID()}` }));
  const enrolled = await client.next('enrolled');
  client.ws.close();
  await client.closed;
  return { deviceId: enrolled.deviceId, secret: Buffer.from(enrolled.deviceSecret, 'base64url') };
}

async function connect(url: string, d: Device): Promise<RawClient> {
  const client = new RawClient(url);
  await client.opened;
  client.send(hello({ kind: 'device', deviceId: d.deviceId }));
  const { nonce } = await client.next('challenge');
  client.send({ v: 1, type: 'auth.proof', deviceId: d.deviceId, nonce, proof: proofFor(d.secret, nonce, d.deviceId) });
  await client.next('welcome');
  return client;
}

/** Bounded: the connection's close code, or 'open' if it is still open after the wait. */
async function closedWith(client: RawClient): Promise<number | 'open'> {
  try {
    await eventually(() => (client.ws.readyState === WebSocket.CLOSED ? true : undefined), 100);
  } catch {
    return 'open';
  }
  return (await client.closed).code;
}

const stored = async (store: CollectorStore, deviceId: string) => (await store.queryEvents({ device: deviceId, limit: 1000 })).events.map((e) => e.seq);

/**
 * A revoked device writes nothing more: its live connection is closed with
 * 4403 on whichever process holds it, and what it sends meanwhile is neither
 * stored nor acknowledged (docs/protocol.md, "Revocation").
 */
describe('revoking a connected device (SQLite)', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startTestCollector();
  });
  afterAll(() => c.close());

  const revoke = (deviceId: string) =>
    fetch(`${c.httpUrl}/api/devices/${deviceId}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${c.adminToken}` } });

  it('closes the live connection with 4403 INV_ERR_DEVICE_REVOKED as soon as the network manager revokes it', async () => {
    const d = await enroll(c.agentUrl, await c.enrollmentToken());
    const client = await connect(c.agentUrl, d);
    client.send(batch([event(d.deviceId, 1)]));
    expect((await client.next('ack')).upToSeq).toBe(1);
    expect((await revoke(d.deviceId)).status).toBe(200);
    expect(await closedWith(client)).toBe(4403);
    expect(errorCodes(client)).toEqual(['INV_ERR_DEVICE_REVOKED']);
    expect(await stored(c.store, d.deviceId)).toEqual([1]);
    expect(c.collector.agents.isOnline(d.deviceId)).toBe(false);
  });

  it('refuses events that arrive after the revocation is stored but before any notice: not stored, not acknowledged, closed 4403', async () => {
    const d = await enroll(c.agentUrl, await c.enrollmentToken());
    const client = await connect(c.agentUrl, d);
    // Straight into the store, as another process would: no notice reaches this one.
    await c.store.revokeDevice(d.deviceId, new Date().toISOString());
    client.send(batch([event(d.deviceId, 1), event(d.deviceId, 2)]));
    expect(await closedWith(client)).toBe(4403);
    expect(errorCodes(client)).toEqual(['INV_ERR_DEVICE_REVOKED']);
    expect(acks(client)).toEqual([]);
    expect(await stored(c.store, d.deviceId)).toEqual([]);
  });

  it('refuses a permission request from a device revoked before any notice, storing nothing', async () => {
    const d = await enroll(c.agentUrl, await c.enrollmentToken());
    const client = await connect(c.agentUrl, d);
    await c.store.revokeDevice(d.deviceId, new Date().toISOString());
    client.send({
      v: 1,
      type: 'permission.request',
      requestId: 'r-1',
      kind: 'usb-device',
      subject: { label: 'a stick' },
      user: { name: 'amy.p' },
      reason: 'homework',
    });
    expect(await closedWith(client)).toBe(4403);
    expect(errorCodes(client)).toEqual(['INV_ERR_DEVICE_REVOKED']);
    expect(await c.store.getPermissionRequest(d.deviceId, 'r-1')).toBeUndefined();
  });

  it('refuses a command result from a device revoked before any notice, leaving the command open', async () => {
    const d = await enroll(c.agentUrl, await c.enrollmentToken());
    const commandId = `cmd-${randomUUID()}`;
    await c.store.createCommand({ id: commandId, deviceId: d.deviceId, command: { kind: 'refresh-inventory' }, createdAt: new Date().toISOString() });
    const client = await connect(c.agentUrl, d);
    await client.next('command');
    await c.store.revokeDevice(d.deviceId, new Date().toISOString());
    client.send({ v: 1, type: 'command.result', commandId, ok: true });
    expect(await closedWith(client)).toBe(4403);
    expect(errorCodes(client)).toEqual(['INV_ERR_DEVICE_REVOKED']);
    expect((await c.store.getCommand(commandId))?.completedAt ?? null).toBeNull();
  });

  it('closes, at the next heartbeat, a connection whose revocation notice never came', async () => {
    const quick = await startTestCollector({ limits: { pingIntervalMs: 200 } });
    try {
      const d = await enroll(quick.agentUrl, await quick.enrollmentToken());
      const client = await connect(quick.agentUrl, d);
      await quick.store.revokeDevice(d.deviceId, new Date().toISOString());
      // It sends nothing, so no transaction sees it: only the sweep can.
      expect(await closedWith(client)).toBe(4403);
      expect(errorCodes(client)).toEqual(['INV_ERR_DEVICE_REVOKED']);
    } finally {
      await quick.close();
    }
  });
});

async function collectorProcess(db: string, dataDir: string, secretKeyFile: string) {
  const port = await freePort();
  // The token in the data dir approves at once: these tests are about revocation, not approval.
  const run = startCli(['collector', '--db', db, '--port', String(port), '--data-dir', dataDir, '--log-level', 'error', '--secret-key-file', secretKeyFile], {
    INVIGILATOR_ENROLLMENT_APPROVAL: 'automatic',
  });
  await eventually(() => (/listening on/.test(run.output()) ? true : undefined), 400);
  return { run, port, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/agent` };
}

describePostgres('revoking a connected device, two collector processes sharing PostgreSQL', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let a: Awaited<ReturnType<typeof collectorProcess>>;
  let b: Awaited<ReturnType<typeof collectorProcess>>;
  let adminToken: string;
  let enrollmentToken: string;
  let store: PostgresStore;

  beforeAll(async () => {
    schema = await freshSchema();
    const dirA = tempDir('collector-a');
    // Collectors on one database share one device secret key (docs/deployment.md), and so does this test's store.
    const keyFile = join(tempDir('shared-key'), 'device-secret-key');
    writeFileSync(keyFile, `${TEST_SECRET_KEY.toString('base64url')}\n`, { mode: 0o600 });
    a = await collectorProcess(schema.url, dirA, keyFile);
    b = await collectorProcess(schema.url, tempDir('collector-b'), keyFile);
    adminToken = readFileSync(join(dirA, 'admin-token'), 'utf8').trim();
    enrollmentToken = readFileSync(join(dirA, 'enrollment-token'), 'utf8').trim();
    store = new PostgresStore(schema.url, { secretKey: TEST_SECRET_KEY });
  });
  afterAll(async () => {
    await store.close();
    for (const p of [a, b]) p.run.child.kill('SIGTERM');
    await Promise.all([a.run.exited, b.run.exited]);
    await schema.drop();
  });

  it('a revocation posted to one process closes the connection held by the other with 4403', async () => {
    const d = await enroll(a.ws, enrollmentToken);
    const client = await connect(a.ws, d);
    client.send(batch([event(d.deviceId, 1)]));
    expect((await client.next('ack')).upToSeq).toBe(1);
    const revoked = await fetch(`${b.http}/api/devices/${d.deviceId}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } });
    expect(revoked.status).toBe(200);
    expect(await closedWith(client)).toBe(4403);
    expect(errorCodes(client)).toEqual(['INV_ERR_DEVICE_REVOKED']);
    expect(await stored(store, d.deviceId)).toEqual([1]);
  });

  it('events sent after the revocation committed, before its notice, are neither stored nor acknowledged', async () => {
    const d = await enroll(a.ws, enrollmentToken);
    const client = await connect(a.ws, d);
    // Revoked in the database behind both processes' backs: no notice at all.
    await store.revokeDevice(d.deviceId, new Date().toISOString());
    client.send(batch([event(d.deviceId, 1)]));
    expect(await closedWith(client)).toBe(4403);
    expect(errorCodes(client)).toEqual(['INV_ERR_DEVICE_REVOKED']);
    expect(acks(client)).toEqual([]);
    expect(await stored(store, d.deviceId)).toEqual([]);
  });
});
