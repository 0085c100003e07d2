import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { type RunningAgent, startAgent } from '../../agent/agent';
import type { AgentSocketLimits } from '../../collector/agent-socket';
import { ensureAdminToken } from '../../collector/bootstrap';
import { type Collector, buildCollector } from '../../collector/collector';
import { createEnrollmentToken } from '../../collector/http-api';
import { SqliteStore } from '../../collector/store/sqlite/sqlite-store';
import type { CollectorStore } from '../../collector/store/store';
import { createLogger } from '../../node-common/logging';
import { preset } from '../../shared/policy/presets';
import type { Policy } from '../../shared/policy/schema';
import type { CollectorToAgent } from '../../shared/protocol';
import { eventually, tempDir } from './cli';
import { TEST_SECRET_KEY } from './secret-key';

export const silentLogger = () => createLogger({ program: 'test', level: 'error', console: false });

export interface TestCollector {
  collector: Collector;
  store: CollectorStore;
  agentUrl: string;
  httpUrl: string;
  adminToken: string;
  enrollmentToken(): Promise<string>;
  close(): Promise<void>;
}

/** A real collector on a real SQLite file (or the given store), listening on 127.0.0.1. */
export async function startTestCollector(
  options: { store?: CollectorStore; limits?: Partial<AgentSocketLimits>; policy?: Policy; port?: number } = {},
): Promise<TestCollector> {
  const dir = tempDir('collector');
  const store = options.store ?? new SqliteStore(join(dir, 'collector.db'), { secretKey: TEST_SECRET_KEY });
  await store.migrate();
  const collector = buildCollector({
    store,
    logger: silentLogger(),
    policy: options.policy ?? preset('basildon-primary')!,
    version: '0.0.0-test',
    limits: options.limits ?? {},
  });
  const address = await collector.listen(options.port ?? 0, '127.0.0.1');
  await ensureAdminToken(store, dir, Date.now(), silentLogger());
  return {
    collector,
    store,
    agentUrl: `ws://127.0.0.1:${address.port}/agent`,
    httpUrl: `http://127.0.0.1:${address.port}`,
    adminToken: readFileSync(join(dir, 'admin-token'), 'utf8').trim(),
    // Approves at once: these tests are about what enrolled agents do (test/collector/enrollment.test.ts is about approval).
    enrollmentToken: async () => (await createEnrollmentToken(store, Date.now(), 'test', 1, { approval: 'automatic' })).token,
    close: async () => {
      await collector.close();
      await store.close();
    },
  };
}

/** The real agent (outbox, link, policy keeper), in this process, with its data in a temporary folder. */
export async function startTestAgent(
  agentUrl: string,
  enrollmentToken: string,
  dataDir = tempDir('agent'),
  linkTuning: Parameters<typeof startAgent>[0]['linkTuning'] = {},
  caFile?: string,
  extra: Pick<Parameters<typeof startAgent>[0], 'usb' | 'notices'> & { policy?: string; fallbackPolicy?: Policy } = {},
): Promise<RunningAgent & { dataDir: string }> {
  const agent = await startAgent({
    config: {
      collector: { url: agentUrl, enrollmentToken, allowInsecure: false, ...(caFile ? { caFile } : {}) },
      dataDir,
      logLevel: 'error',
      policy: extra.policy ?? 'basildon-primary',
      outbox: { capBytes: 256 * 1024 * 1024 },
    },
    fallbackPolicy: extra.fallbackPolicy ?? preset('basildon-primary')!,
    logger: silentLogger(),
    platform: 'linux',
    version: '0.0.0-test',
    linkTuning,
    ...(extra.usb ? { usb: extra.usb } : {}),
    ...(extra.notices ? { notices: extra.notices } : {}),
  });
  return Object.assign(agent, { dataDir });
}

/** A WebSocket client that speaks whatever a test tells it to: the hostile peer. */
export class RawClient {
  readonly ws: WebSocket;
  private readonly inbox: CollectorToAgent[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data) => this.inbox.push(JSON.parse(String(data)) as CollectorToAgent));
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message));
  }

  /** The next message of the given type, waiting a bounded while for it. */
  async next<T extends CollectorToAgent['type']>(type: T): Promise<Extract<CollectorToAgent, { type: T }>> {
    return eventually(() => {
      const i = this.inbox.findIndex((m) => m.type === type);
      return i >= 0 ? (this.inbox.splice(i, 1)[0] as Extract<CollectorToAgent, { type: T }>) : undefined;
    });
  }

  messages(): CollectorToAgent[] {
    return [...this.inbox];
  }
}

/** A port that was free a moment ago, for a server that must come back on the same port after a crash. */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
