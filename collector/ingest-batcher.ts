import type { EventEnvelope } from '../shared/protocol';
import type { CollectorStore, DeviceConnection, InsertResult } from './store/store';

interface PendingConnection {
  deviceId: string;
  connection: DeviceConnection;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface Pending {
  deviceId: string;
  events: readonly EventEnvelope[];
  resolve: (r: InsertResult) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for the collector: batches that arrive from many connections
 * while a commit is in progress are stored together in the next transaction,
 * so a thousand agents cost one fsync per flush rather than one per batch.
 * Each batch's promise resolves only after the transaction holding it has
 * committed, so an acknowledgement still means "durably stored".
 */
export class IngestBatcher {
  private queue: Pending[] = [];
  private connections: PendingConnection[] = [];
  private flushing = false;

  constructor(
    private readonly store: CollectorStore,
    private readonly now: () => number,
    /** Events per transaction at most; more wait for the next one. */
    private readonly maxEventsPerFlush = 20_000,
  ) {}

  submit(deviceId: string, events: readonly EventEnvelope[]): Promise<InsertResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ deviceId, events, resolve, reject });
      this.schedule();
    });
  }

  /** A device authenticated: recorded in the next transaction, so a reconnect storm shares its fsyncs too. */
  connected(deviceId: string, connection: DeviceConnection): Promise<void> {
    return new Promise((resolve, reject) => {
      this.connections.push({ deviceId, connection, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0 || this.connections.length > 0) {
      const connections = this.connections;
      this.connections = [];
      let n = 0;
      let count = 0;
      while (n < this.queue.length && (n === 0 || count + this.queue[n]!.events.length <= this.maxEventsPerFlush)) count += this.queue[n++]!.events.length;
      const take = this.queue.splice(0, n);
      try {
        const results = await this.store.insertEventBatches(take, new Date(this.now()).toISOString(), connections);
        take.forEach((p, i) => p.resolve(results[i]!));
        for (const c of connections) c.resolve();
      } catch (e) {
        for (const p of take) p.reject(e);
        for (const c of connections) c.reject(e);
      }
    }
    this.flushing = false;
  }
}
