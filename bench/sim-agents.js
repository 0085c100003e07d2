'use strict';
/**
 * Simulated agents for load benchmarks: real WebSocket clients speaking the
 * real protocol (hello, challenge, proof, batches, acks), without an outbox,
 * so one process can play thousands of laptops.
 */
const { createHash, randomBytes, randomUUID } = require('node:crypto');
const { writeFileSync } = require('node:fs');
const { spawn } = require('node:child_process');
const { join } = require('node:path');
const { WebSocket: WsClient } = require('ws');
const { DIST, ROOT, sleep, tempDir } = require('./lib');
const { proofFor } = require(join(DIST, 'node-common/device-proof.js'));

const secretFor = (i) => createHash('sha256').update(`bench-device-${i}`).digest();

/**
 * One device secret key for every store and collector process of this benchmark run
 * (docs/deployment.md): the database records the key its secrets are sealed under.
 */
let benchKey;
function benchSecretKey() {
  if (!benchKey) {
    const file = join(tempDir('secret-key'), 'device-secret-key');
    const key = randomBytes(32);
    writeFileSync(file, `${key.toString('base64url')}\n`, { mode: 0o600 });
    benchKey = { file, key };
  }
  return benchKey;
}
const deviceIdFor = (i) => `dev-bench-${i}`;

/**
 * Enrolls `count` devices straight into the store, in one transaction, before the collector starts. Their
 * secrets go in as an older release stored them, in clear: the collector seals them when it opens the database.
 */
async function preEnroll(db, count) {
  const now = new Date().toISOString();
  if (db.startsWith('sqlite:')) {
    const { SqliteStore } = require(join(DIST, 'collector/store/sqlite/sqlite-store.js'));
    const store = new SqliteStore(db.slice(7), { secretKey: benchSecretKey().key });
    await store.migrate();
    await store.close();
    const Database = require('better-sqlite3');
    const raw = new Database(db.slice(7));
    const insert = raw.prepare(
      "INSERT INTO devices (id, installation_id, secret, hostname, platform, agent_version, token_id, enrolled_at, last_seen, confirmed_at) VALUES (?, ?, ?, ?, 'linux', 'bench', 'tok-bench', ?, ?, ?)",
    );
    raw.transaction(() => {
      for (let i = 0; i < count; i++) insert.run(deviceIdFor(i), `inst-bench-${i}`, secretFor(i), `BENCH-${i}`, now, now, now);
    })();
    raw.close();
  } else {
    const { PostgresStore } = require(join(DIST, 'collector/store/postgres/postgres-store.js'));
    const store = new PostgresStore(db, { secretKey: benchSecretKey().key });
    await store.migrate();
    const ids = Array.from({ length: count }, (_, i) => i);
    await store.pool.query(
      `INSERT INTO devices (id, installation_id, secret, hostname, platform, agent_version, token_id, enrolled_at, last_seen, confirmed_at)
       SELECT d, i, s, h, 'linux', 'bench', 'tok-bench', $4, $4, $4 FROM unnest($1::text[], $2::text[], $3::bytea[], $5::text[]) AS x(d, i, s, h)`,
      [ids.map(deviceIdFor), ids.map((i) => `inst-bench-${i}`), ids.map(secretFor), now, ids.map((i) => `BENCH-${i}`)],
    );
    await store.close();
  }
}

/** Starts the real collector as its own process and resolves once it listens. */
async function startCollector(db, port, dataDir, extraEnv = {}, extraArgs = []) {
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/invigilator.js'),
      'collector',
      '--db',
      db,
      '--port',
      String(port),
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
      '--secret-key-file',
      benchSecretKey().file,
      ...extraArgs,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      // Every simulated agent is on 127.0.0.1, where a real fleet comes from many addresses: no per-address cap.
      env: { ...process.env, INVIGILATOR_HANDSHAKES_PER_ADDRESS: '0', ...extraEnv },
    },
  );
  await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`collector exited ${code}: ${out}`)));
  });
  child.stdout.resume();
  return child;
}

const EVENT_TAIL =
  ',"time":"2026-11-23T09:00:00.000Z","type":"usb.connected","severity":"info","user":{"name":"amy.p","role":"pupil"},"data":{"device":{"vendorId":"0781","productId":"5567","serial":"4C530001230712115462","manufacturer":"SanDisk","product":"Cruzer Blade","deviceClass":0,"interfaceClasses":[8]}}}';

class SimAgent {
  constructor(url, index, { authenticate = true } = {}) {
    this.url = url;
    this.index = index;
    this.deviceId = deviceIdFor(index);
    this.authenticate = authenticate;
    this.seq = 0;
    this.waiting = new Map();
  }

  /** Connects and authenticates; when the collector says busy, waits as told and tries again. */
  async connect(maxAttempts = 50) {
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const outcome = await this.tryConnect();
      if (outcome.ok) return;
      await sleep(outcome.retryAfterMs ?? 200);
    }
    throw new Error(`${this.deviceId} could not connect`);
  }

  tryConnect() {
    return new Promise((resolve) => {
      const ws = new WsClient(this.url, { perMessageDeflate: false });
      let settled = false;
      const settle = (v) => {
        if (!settled) {
          settled = true;
          resolve(v);
        }
      };
      ws.on('error', () => settle({ ok: false }));
      ws.on('close', () => settle({ ok: false }));
      ws.on('open', () => {
        if (!this.authenticate) {
          this.ws = ws;
          ws.on('message', (d) => this.onMessage(d));
          return settle({ ok: true });
        }
        ws.send(
          JSON.stringify({
            v: 1,
            type: 'hello',
            agentVersion: 'bench',
            hostname: `BENCH-${this.index}`,
            platform: 'linux',
            policyRevision: 1,
            auth: { kind: 'device', deviceId: this.deviceId },
          }),
        );
      });
      ws.on('message', (data) => {
        if (settled) return;
        const m = JSON.parse(String(data));
        if (m.type === 'busy') {
          ws.terminate();
          // As the real link does: what the collector asked for, plus up to a second of jitter.
          return settle({ ok: false, retryAfterMs: m.retryAfterMs + Math.floor(Math.random() * 1000) });
        }
        if (m.type === 'challenge') {
          ws.send(
            JSON.stringify({
              v: 1,
              type: 'auth.proof',
              deviceId: this.deviceId,
              nonce: m.nonce,
              proof: proofFor(secretFor(this.index), m.nonce, this.deviceId),
            }),
          );
        } else if (m.type === 'welcome') {
          this.ws = ws;
          this.seq = Math.max(this.seq, m.lastAckedSeq);
          ws.removeAllListeners('message');
          ws.on('message', (d) => this.onMessage(d));
          settle({ ok: true });
        }
      });
    });
  }

  onMessage(data) {
    const m = JSON.parse(String(data));
    if (m.type !== 'ack') return;
    for (const [upTo, resolve] of this.waiting) {
      if (upTo <= m.upToSeq) {
        this.waiting.delete(upTo);
        resolve();
      }
    }
  }

  /** Sends `count` new events in one batch; resolves with the milliseconds until they were acknowledged. */
  sendBatch(count) {
    let events = '';
    for (let i = 0; i < count; i++) {
      this.seq++;
      events += `${i ? ',' : ''}{"id":"${randomUUID()}","deviceId":"${this.deviceId}","seq":${this.seq}${EVENT_TAIL}`;
    }
    const upTo = this.seq;
    const started = process.hrtime.bigint();
    return new Promise((resolve) => {
      this.waiting.set(upTo, () => resolve(Number(process.hrtime.bigint() - started) / 1e6));
      this.ws.send(`{"v":1,"type":"event.batch","events":[${events}]}`);
    });
  }

  close() {
    this.ws?.terminate();
  }
}

/** Connects many agents, a wave at a time, so the collector's handshake limit paces them rather than refuses them. */
async function connectAll(agents, wave = 400) {
  for (let i = 0; i < agents.length; i += wave) await Promise.all(agents.slice(i, i + wave).map((a) => a.connect()));
}

module.exports = { SimAgent, preEnroll, startCollector, connectAll, deviceIdFor };
