import { randomUUID } from 'node:crypto';
import type { Logger } from '../node-common/logging';
import type { CollectorStore } from './store/store';

export interface SilenceMonitorOptions {
  store: CollectorStore;
  logger: Logger;
  /** A device not heard from for this long is reported silent, once per silence. */
  silentAfterMs: number;
  checkEveryMs: number;
  now: () => number;
}

/**
 * Raises `device.silent` for devices not heard from within the configured
 * time. The store claims each silence atomically, so with several collector
 * processes each silence is reported once; hearing from the device again ends it.
 */
export class SilenceMonitor {
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: SilenceMonitorOptions) {
    this.timer = setInterval(() => void this.check(), options.checkEveryMs);
    this.timer.unref();
  }

  async check(): Promise<number> {
    const { store, now } = this.options;
    const at = new Date(now()).toISOString();
    try {
      const silent = await store.claimNewlySilent(new Date(now() - this.options.silentAfterMs).toISOString(), at);
      for (const d of silent) {
        await store.insertCollectorEvent(
          {
            id: randomUUID(),
            time: at,
            type: 'device.silent',
            severity: 'warning',
            data: { deviceId: d.id, hostname: d.hostname.slice(0, 256), lastSeen: d.lastSeen },
          },
          at,
        );
      }
      return silent.length;
    } catch (e) {
      this.options.logger.error('silence check failed', { error: String(e) });
      return 0;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
