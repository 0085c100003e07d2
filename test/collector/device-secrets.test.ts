import Database from 'better-sqlite3';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SECRET_KEY_FILE, loadSecretKey } from '../../collector/secret-key-file';
import { DeviceSecretBox } from '../../collector/store/device-secret-box';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import { proofFor } from '../../node-common/device-proof';
import { checkOfflineCode, issueOfflineCode } from '../../node-common/offline-code';
import { tempDir } from '../support/cli';
import { RawClient, startTestCollector } from '../support/harness';

describe('a sealed device secret', () => {
  const key = randomBytes(32);
  const box = new DeviceSecretBox(key);
  const secret = randomBytes(32);

  it('opens for its device under its key, and only so', () => {
    const sealed = box.seal('dev-a', secret);
    expect(sealed).toHaveLength(61);
    expect(box.open('dev-a', sealed)).toEqual(secret);
    // Sealing twice gives two different blobs (a fresh IV each time).
    expect(box.seal('dev-a', secret).equals(sealed)).toBe(false);
    // Moved to another device's row, under another key, or altered: refused, with the code.
    expect(() => box.open('dev-b', sealed)).toThrow(expect.objectContaining({ code: 'INV_ERR_SECRET_KEY_MISMATCH' }) as Error);
    expect(() => new DeviceSecretBox(randomBytes(32)).open('dev-a', sealed)).toThrow(expect.objectContaining({ code: 'INV_ERR_SECRET_KEY_MISMATCH' }) as Error);
    for (const at of [0, 5, 20, 40, 60]) {
      const altered = Buffer.from(sealed);
      altered[at]! ^= 1;
      expect(() => box.open('dev-a', altered)).toThrow(expect.objectContaining({ code: 'INV_ERR_SECRET_KEY_MISMATCH' }) as Error);
    }
    expect(() => box.open('dev-a', secret)).toThrow(expect.objectContaining({ code: 'INV_ERR_SECRET_KEY_MISMATCH' }) as Error);
  });

  it('names its key by an id that is the same for the same key and tells nothing of it', () => {
    expect(new DeviceSecretBox(Buffer.from(key)).keyId).toBe(box.keyId);
    expect(new DeviceSecretBox(randomBytes(32)).keyId).not.toBe(box.keyId);
    expect(Buffer.from(box.keyId, 'hex').indexOf(key.subarray(0, 8))).toBe(-1);
  });
});

describe('the device secret key file', () => {
  let umask: number;
  beforeEach(() => (umask = process.umask(0o022)));
  afterEach(() => process.umask(umask));

  it('is made on first use readable by its owner only, whatever the umask, and read back the same afterwards', () => {
    const path = join(tempDir('key'), SECRET_KEY_FILE);
    const made = loadSecretKey(path);
    expect(made.created).toBe(true);
    expect(made.key).toHaveLength(32);
    if (process.platform !== 'win32') expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect(loadSecretKey(path)).toEqual({ key: made.key, created: false });
  });

  (process.platform === 'win32' ? it.skip : it)('is refused when others can read or change it, or when it holds no key', () => {
    const dir = tempDir('key');
    const open = join(dir, 'open-key');
    writeFileSync(open, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o644 });
    expect(() => loadSecretKey(open)).toThrow(expect.objectContaining({ code: 'INV_ERR_CONFIG_INVALID' }) as Error);
    for (const content of ['', 'not a key\n', `${randomBytes(16).toString('base64url')}\n`, `${randomBytes(32).toString('hex')}\n`]) {
      const bad = join(dir, `bad-${randomUUID()}`);
      writeFileSync(bad, content, { mode: 0o600 });
      expect(() => loadSecretKey(bad)).toThrow(expect.objectContaining({ code: 'INV_ERR_CONFIG_INVALID' }) as Error);
    }
    expect(() => loadSecretKey(join(dir, 'no-such-folder', SECRET_KEY_FILE))).toThrow(expect.objectContaining({ code: 'INV_ERR_FILE_UNREADABLE' }) as Error);
  });
});

describe('a copy of the collector database without its key (issue 13, item 10)', () => {
  it('mints no offline code the computer accepts and proves no device to the collector', async () => {
    const dir = tempDir('collector-copied');
    const file = join(dir, 'collector.db');
    const c = await startTestCollector({ store: new SqliteStore(file, { secretKey: loadSecretKey(join(dir, SECRET_KEY_FILE)).key }) });
    try {
      const agent = new RawClient(c.agentUrl);
      await agent.opened;
      agent.send({
        v: 1,
        type: 'hello',
        agentVersion: '0.1.0',
        hostname: 'LAPTOP-07',
        platform: 'linux',
        auth: { kind: 'enroll', token: await c.enrollmentToken(), installationId: `inst-${randomUUID()}` },
      });
      const enrolled = await agent.next('enrolled');
      await agent.next('welcome');
      const secret = Buffer.from(enrolled.deviceSecret, 'base64url');
      agent.ws.close();
      await agent.closed;

      // What an unprivileged reader of the data folder takes away: the database and its log, not the key.
      const stolen = join(tempDir('stolen'), 'copy.db');
      copyFileSync(file, stolen);
      if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${stolen}-wal`);
      const copy = new Database(stolen);
      const row = copy.prepare('SELECT secret FROM devices WHERE id = ?').get(enrolled.deviceId) as { secret: Buffer };
      copy.close();
      expect(row.secret.indexOf(secret)).toBe(-1);

      // The review's attack: a code minted from what the database holds, typed in at that laptop.
      const usb = { deviceId: enrolled.deviceId, vendorId: '0781', productId: '5567' };
      const now = Date.now();
      expect(checkOfflineCode(secret, usb, issueOfflineCode(row.secret, usb, now, 60).code, now)).toEqual({ ok: false, code: 'INV_ERR_OFFLINE_CODE_INVALID' });

      // And posing as the laptop with it.
      const impostor = new RawClient(c.agentUrl);
      await impostor.opened;
      impostor.send({
        v: 1,
        type: 'hello',
        agentVersion: '0.1.0',
        hostname: 'LAPTOP-07',
        platform: 'linux',
        auth: { kind: 'device', deviceId: enrolled.deviceId },
      });
      const { nonce } = await impostor.next('challenge');
      impostor.send({ v: 1, type: 'auth.proof', deviceId: enrolled.deviceId, nonce, proof: proofFor(row.secret, nonce, enrolled.deviceId) });
      expect((await impostor.closed).code).toBe(4401);

      // The real laptop still proves itself.
      const laptop = new RawClient(c.agentUrl);
      await laptop.opened;
      laptop.send({
        v: 1,
        type: 'hello',
        agentVersion: '0.1.0',
        hostname: 'LAPTOP-07',
        platform: 'linux',
        auth: { kind: 'device', deviceId: enrolled.deviceId },
      });
      const challenge = await laptop.next('challenge');
      laptop.send({
        v: 1,
        type: 'auth.proof',
        deviceId: enrolled.deviceId,
        nonce: challenge.nonce,
        proof: proofFor(secret, challenge.nonce, enrolled.deviceId),
      });
      await laptop.next('welcome');
      laptop.ws.close();
      await laptop.closed;
    } finally {
      await c.close();
    }
  });
});

describe('a stored secret that does not open under the collector key', () => {
  it('closes the hello 4500 INV_ERR_SECRET_KEY_MISMATCH (the collector is at fault, the agent retries), not 4400 as if the agent had sent a bad frame', async () => {
    const file = join(tempDir('collector-altered'), 'collector.db');
    const c = await startTestCollector({ store: new SqliteStore(file, { secretKey: randomBytes(32) }) });
    try {
      const enrolling = new RawClient(c.agentUrl);
      await enrolling.opened;
      enrolling.send({
        v: 1,
        type: 'hello',
        agentVersion: '0.1.0',
        hostname: 'LAPTOP-08',
        platform: 'linux',
        auth: { kind: 'enroll', token: await c.enrollmentToken(), installationId: `inst-${randomUUID()}` },
      });
      const { deviceId } = await enrolling.next('enrolled');
      await enrolling.next('welcome');
      enrolling.ws.close();
      await enrolling.closed;

      // The sealed secret altered behind the collector's back (a restored backup, a bad disk).
      const raw = new Database(file);
      const { secret } = raw.prepare('SELECT secret FROM devices WHERE id = ?').get(deviceId) as { secret: Buffer };
      secret[secret.length - 1]! ^= 0xff;
      raw.prepare('UPDATE devices SET secret = ? WHERE id = ?').run(secret, deviceId);
      raw.close();

      const back = new RawClient(c.agentUrl);
      await back.opened;
      back.send({ v: 1, type: 'hello', agentVersion: '0.1.0', hostname: 'LAPTOP-08', platform: 'linux', auth: { kind: 'device', deviceId } });
      expect(await back.closed).toEqual({ code: 4500, reason: 'INV_ERR_SECRET_KEY_MISMATCH' });
      expect(back.messages().flatMap((m) => (m.type === 'error' ? [m.error.code] : []))).toEqual(['INV_ERR_SECRET_KEY_MISMATCH']);
    } finally {
      await c.close();
    }
  });
});
