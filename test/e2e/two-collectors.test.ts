import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { proofFor } from '../../node-common/device-proof';
import { SECRET_KEY_FILE, loadSecretKey } from '../../collector/secret-key-file';
import { PostgresStore } from '../../collector/store/postgres/postgres-store';
import { eventually, startCli, tempDir } from '../support/cli';
import { RawClient, freePort } from '../support/harness';
import { describePostgres, freshSchema } from '../support/postgres';
import { sampleEvent } from '../support/samples';

async function collectorProcess(db: string, dataDir: string, secretKeyFile: string) {
  const port = await freePort();
  // The token the collector keeps in its data dir approves at once: these tests are about delivery, not approval.
  const run = startCli(['collector', '--db', db, '--port', String(port), '--data-dir', dataDir, '--log-level', 'error', '--secret-key-file', secretKeyFile], {
    INVIGILATOR_ENROLLMENT_APPROVAL: 'automatic',
  });
  await eventually(() => (/listening on/.test(run.output()) ? true : undefined), 400);
  return { run, port, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/agent` };
}

const hello = (auth: object) => ({ v: 1, type: 'hello', agentVersion: '0.1.0', hostname: 'CLASS3-01', platform: 'linux', policyRevision: 1, auth });

async function authenticate(url: string, deviceId: string, secret: Buffer): Promise<RawClient> {
  const client = new RawClient(url);
  await client.opened;
  client.send(hello({ kind: 'device', deviceId }));
  const { nonce } = await client.next('challenge');
  client.send({ v: 1, type: 'auth.proof', deviceId, nonce, proof: proofFor(secret, nonce, deviceId) });
  await client.next('welcome');
  return client;
}

describePostgres('two collector processes sharing one PostgreSQL', () => {
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let a: Awaited<ReturnType<typeof collectorProcess>>;
  let b: Awaited<ReturnType<typeof collectorProcess>>;
  let adminToken: string;
  let device: { deviceId: string; secret: Buffer };
  const keyFile = join(tempDir('shared-key'), 'device-secret-key');

  beforeAll(async () => {
    schema = await freshSchema();
    const dirA = tempDir('collector-a');
    // Collectors on one database share one device secret key (docs/deployment.md).
    a = await collectorProcess(schema.url, dirA, keyFile);
    b = await collectorProcess(schema.url, tempDir('collector-b'), keyFile);
    adminToken = readFileSync(join(dirA, 'admin-token'), 'utf8').trim();
    const enrolling = new RawClient(a.ws);
    await enrolling.opened;
    enrolling.send(hello({ kind: 'enroll', token: readFileSync(join(dirA, 'enrollment-token'), 'utf8').trim(), installationId: `inst-${randomUUID()}` }));
    const enrolled = await enrolling.next('enrolled');
    device = { deviceId: enrolled.deviceId, secret: Buffer.from(enrolled.deviceSecret, 'base64url') };
    enrolling.ws.close();
    await enrolling.closed;
  });

  afterAll(async () => {
    for (const p of [a, b]) p.run.child.kill('SIGTERM');
    await Promise.all([a.run.exited, b.run.exited]);
    await schema.drop();
  });

  const api = (base: string, path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', ...init.headers } });

  it('a command posted to one process reaches the device connected to the other, and its result is recorded', async () => {
    const agent = await authenticate(a.ws, device.deviceId, device.secret);
    const posted = await api(b.http, `/api/devices/${device.deviceId}/commands`, {
      method: 'POST',
      body: JSON.stringify({ command: { kind: 'refresh-inventory' } }),
    });
    expect(posted.status).toBe(202);
    const { commandId } = (await posted.json()) as { commandId: string };

    const received = await agent.next('command');
    expect(received).toMatchObject({ commandId, command: { kind: 'refresh-inventory' } });
    agent.send({ v: 1, type: 'command.result', commandId, ok: true });

    const status = await eventually(async () => {
      const record = (await (await api(b.http, `/api/commands/${commandId}`)).json()) as { completedAt: string | null; ok: boolean | null };
      return record.completedAt ? record : undefined;
    });
    expect(status.ok).toBe(true);
    // Either process can tell the device is online, whichever holds its connection.
    const listed = (await (await api(b.http, '/api/devices')).json()) as { devices: Array<{ id: string; online: boolean }> };
    expect(listed.devices.find((d) => d.id === device.deviceId)?.online).toBe(true);
    agent.ws.close();
    await agent.closed;
  });

  it('a command for a device that is away waits, and is sent when it connects to either process', async () => {
    const posted = await api(a.http, `/api/devices/${device.deviceId}/commands`, {
      method: 'POST',
      body: JSON.stringify({ command: { kind: 'logoff', target: { scope: 'device' }, reason: 'end of day' } }),
    });
    const { commandId } = (await posted.json()) as { commandId: string };
    const agent = await authenticate(b.ws, device.deviceId, device.secret);
    expect(await agent.next('command')).toMatchObject({ commandId, command: { kind: 'logoff' } });
    agent.ws.close();
    await agent.closed;
  });

  it('stores the same batch sent through both processes at once exactly once', async () => {
    const viaA = await authenticate(a.ws, device.deviceId, device.secret);
    const viaB = await authenticate(b.ws, device.deviceId, device.secret);
    const events = Array.from({ length: 100 }, (_, i) => ({ ...sampleEvent('usb.connected'), id: randomUUID(), deviceId: device.deviceId, seq: 1000 + i }));
    const batch = { v: 1, type: 'event.batch', events };
    viaA.send(batch);
    viaB.send(batch);
    await Promise.all([viaA.next('ack'), viaB.next('ack')]);

    const store = new PostgresStore(schema.url, { secretKey: loadSecretKey(keyFile).key });
    try {
      const stored = (await store.queryEvents({ device: device.deviceId, limit: 1000 })).events.filter((e) => (e.seq as number) >= 1000);
      expect(stored).toHaveLength(100);
    } finally {
      await store.close();
      viaA.ws.close();
      viaB.ws.close();
    }
  });

  it('a third collector with a key of its own refuses the database and exits, leaving the others serving', async () => {
    const dir = tempDir('collector-c');
    const port = await freePort();
    const run = startCli(['collector', '--db', schema.url, '--port', String(port), '--data-dir', dir, '--log-level', 'error']);
    expect(await run.exited).toEqual({ code: 3, signal: null });
    expect(run.output()).toContain('INV_ERR_SECRET_KEY_MISMATCH');
    // It made a key of its own in its data folder; the shared one is untouched and still opens every device.
    expect(readFileSync(join(dir, SECRET_KEY_FILE), 'utf8').trim()).not.toBe(readFileSync(keyFile, 'utf8').trim());
    const agent = await authenticate(b.ws, device.deviceId, device.secret);
    agent.ws.close();
    await agent.closed;
  });
});
