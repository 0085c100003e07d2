import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '../node-common/logging';

/**
 * Tells every collector process that a device has new commands waiting, or
 * that it was revoked. The facts themselves are in the store; the bus only
 * says "look", so a lost notice costs nothing but delay: pending commands are
 * also sent whenever the device connects, and a revoked device's events are
 * refused by the store and its connection closed at the next heartbeat.
 */
export interface CommandBus {
  publish(deviceId: string): Promise<void>;
  subscribe(handler: (deviceId: string) => void): void;
  /** The device was revoked: the process holding its connection closes it (4403). */
  publishRevoked(deviceId: string): Promise<void>;
  subscribeRevoked(handler: (deviceId: string) => void): void;
  close(): Promise<void>;
}

/** One process (SQLite): an in-memory emitter. */
export class LocalCommandBus implements CommandBus {
  private readonly emitter = new EventEmitter();

  async publish(deviceId: string): Promise<void> {
    this.emitter.emit('device', deviceId);
  }

  subscribe(handler: (deviceId: string) => void): void {
    this.emitter.on('device', handler);
  }

  async publishRevoked(deviceId: string): Promise<void> {
    this.emitter.emit('revoked', deviceId);
  }

  subscribeRevoked(handler: (deviceId: string) => void): void {
    this.emitter.on('revoked', handler);
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}

const CHANNEL = 'invigilator_commands';
const REVOKED_CHANNEL = 'invigilator_revocations';

/** Several processes on one PostgreSQL: LISTEN/NOTIFY on a dedicated connection, re-established if it drops. */
export class PostgresCommandBus implements CommandBus {
  private listener: pg.Client | undefined;
  private readonly handlers: Array<(deviceId: string) => void> = [];
  private readonly revokedHandlers: Array<(deviceId: string) => void> = [];
  private closed = false;
  private retry: NodeJS.Timeout | undefined;

  private constructor(
    private readonly connectionString: string,
    private readonly pool: pg.Pool,
    private readonly log: Logger,
  ) {}

  static async start(connectionString: string, pool: pg.Pool, logger: Logger): Promise<PostgresCommandBus> {
    const bus = new PostgresCommandBus(connectionString, pool, logger.child({ component: 'command-bus' }));
    await bus.listen();
    return bus;
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString });
    client.on('notification', (n) => {
      if (!n.payload) return;
      for (const h of n.channel === CHANNEL ? this.handlers : n.channel === REVOKED_CHANNEL ? this.revokedHandlers : []) h(n.payload);
    });
    client.on('error', (e) => {
      this.log.warn('command bus connection lost; reconnecting', { error: e.message });
      void client.end().catch(() => undefined);
      this.scheduleReconnect();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    await client.query(`LISTEN ${REVOKED_CHANNEL}`);
    this.listener = client;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.listen().catch(() => this.scheduleReconnect());
    }, 1000);
  }

  async publish(deviceId: string): Promise<void> {
    await this.pool.query('SELECT pg_notify($1, $2)', [CHANNEL, deviceId]);
  }

  subscribe(handler: (deviceId: string) => void): void {
    this.handlers.push(handler);
  }

  async publishRevoked(deviceId: string): Promise<void> {
    await this.pool.query('SELECT pg_notify($1, $2)', [REVOKED_CHANNEL, deviceId]);
  }

  subscribeRevoked(handler: (deviceId: string) => void): void {
    this.revokedHandlers.push(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    await this.listener?.end().catch(() => undefined);
  }
}
