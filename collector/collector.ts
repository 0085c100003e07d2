import { type Server, createServer } from 'node:http';
import { type Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { InvigilatorError } from '../shared/errors';
import type { Policy } from '../shared/policy/schema';
import type { Logger } from '../node-common/logging';
import { AgentSocket, type AgentSocketLimits, DEFAULT_AGENT_SOCKET_LIMITS } from './agent-socket';
import { createHttpApi } from './http-api';
import { Metrics } from './metrics';
import { type CommandBus, LocalCommandBus } from './command-bus';
import { DEFAULT_LOGIN_LEASE_LIMITS, type LoginLeaseLimits, LoginLeases } from './login-leases';
import { SilenceMonitor } from './silence-monitor';
import type { CollectorStore } from './store/store';
import { randomBytes } from 'node:crypto';

export interface CollectorOptions {
  store: CollectorStore;
  /** PEM certificate and key: serve https and wss. Without them, plain http and ws (loopback, or behind a TLS proxy). */
  tls?: { cert: Buffer; key: Buffer };
  /** Default: in-process, right for one collector on SQLite. */
  bus?: CommandBus;
  /** Default: a random id for this process. */
  instanceId?: string;
  /** Default: a week without a word. */
  silentAfterMs?: number;
  silenceCheckEveryMs?: number;
  /** How often dead login leases are deleted (they stop counting the moment they expire either way). Default: a minute. */
  leaseSweepEveryMs?: number;
  logger: Logger;
  policy: Policy;
  version: string;
  limits?: Partial<AgentSocketLimits>;
  /** What one computer may do in the login limit; default DEFAULT_LOGIN_LEASE_LIMITS. */
  loginLeases?: Partial<LoginLeaseLimits>;
  now?: () => number;
}

export interface Collector {
  readonly server: Server | HttpsServer;
  readonly agents: AgentSocket;
  readonly metrics: Metrics;
  readonly store: CollectorStore;
  readonly silence: SilenceMonitor;
  /** Resolves with the bound address once listening. */
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Closes agent connections (1001), stops listening; the store stays open for the caller to close. */
  close(): Promise<void>;
}

/**
 * Builds a collector without listening, so that tests drive it in-process
 * and the CLI decides where it listens.
 */
export function buildCollector(options: CollectorOptions): Collector {
  const now = options.now ?? Date.now;
  const metrics = new Metrics();
  const bus = options.bus ?? new LocalCommandBus();
  const loginLeases = new LoginLeases({
    store: options.store,
    bus,
    policy: () => options.policy,
    logger: options.logger,
    metrics,
    now,
    limits: { ...DEFAULT_LOGIN_LEASE_LIMITS, ...options.loginLeases },
  });
  const agents = new AgentSocket({
    store: options.store,
    bus,
    instanceId: options.instanceId ?? `collector-${randomBytes(6).toString('hex')}`,
    logger: options.logger,
    metrics,
    policy: () => options.policy,
    limits: { ...DEFAULT_AGENT_SOCKET_LIMITS, ...options.limits },
    now,
    loginLeases,
  });
  const limits = { ...DEFAULT_AGENT_SOCKET_LIMITS, ...options.limits };
  const api = createHttpApi({
    store: options.store,
    agents,
    bus,
    metrics,
    logger: options.logger,
    now,
    version: options.version,
    presenceTimeoutMs: 3 * limits.pingIntervalMs,
  });
  const silence = new SilenceMonitor({
    store: options.store,
    logger: options.logger,
    silentAfterMs: options.silentAfterMs ?? 7 * 24 * 3_600_000,
    checkEveryMs: options.silenceCheckEveryMs ?? 60_000,
    now,
  });
  const leaseSweep = setInterval(() => {
    loginLeases.sweep();
    options.store.dropExpiredLeases(new Date(now()).toISOString()).catch((e: unknown) => {
      options.logger.warn('could not delete expired login leases', { error: String(e) });
    });
  }, options.leaseSweepEveryMs ?? 60_000);
  leaseSweep.unref();
  const serverOptions = { requestTimeout: 30_000, headersTimeout: 10_000 };
  const server = options.tls
    ? createHttpsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }, api)
    : createServer(serverOptions, api);
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    if (new URL(req.url ?? '/', 'http://collector.invalid').pathname !== '/agent') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    agents.handleUpgrade(req, socket, head);
  });

  return {
    server,
    agents,
    metrics,
    store: options.store,
    silence,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        const onError = (e: NodeJS.ErrnoException) => reject(new InvigilatorError('INV_ERR_LISTEN_FAILED', `${host}:${port}: ${e.code ?? e.message}`));
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: async () => {
      silence.stop();
      clearInterval(leaseSweep);
      await agents.close();
      await bus.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
