import type { ConnectionLimits } from '../../shared/protocol';

/**
 * What the link assumes of a collector that does not say (an older one): the
 * collector's own defaults (docs/protocol.md, "Rate limit").
 */
export const ASSUMED_COLLECTOR_LIMITS: ConnectionLimits = {
  messagesPerSecond: 50,
  messageBurst: 200,
  maxFrameBytes: 1024 * 1024,
  maxEventsPerBatch: 500,
};

/** The smallest batch frame the link will plan for, however often a collector refuses frames for their size. */
export const MIN_FRAME_BUDGET_BYTES = 1024;

/**
 * How the link keeps under a collector's limits, with room to spare: a fifth
 * below its rate, half its burst (frames sent evenly can arrive bunched after a
 * network stall, and the collector counts on arrival), three quarters of its
 * frame limit.
 */
export function paceFor(limits: ConnectionLimits, batchSize: number): { rate: number; burst: number; frameBytes: number; maxEvents: number } {
  return {
    rate: Math.max(1, Math.floor(limits.messagesPerSecond * 0.8)),
    burst: Math.max(1, Math.floor(limits.messageBurst / 2)),
    frameBytes: Math.max(MIN_FRAME_BUDGET_BYTES, Math.floor(limits.maxFrameBytes * 0.75)),
    maxEvents: Math.max(1, Math.min(batchSize, limits.maxEventsPerBatch)),
  };
}

/**
 * A token bucket for what the link sends on one connection: every message
 * takes a token, whatever it is. Its clock is injected, so tests need no sleeps.
 */
export class Pacer {
  private tokens: number;
  private last: number;

  constructor(
    private rate: number,
    private burst: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** New limits mid-connection (from `welcome`): what was spent stays spent. */
  retune(rate: number, burst: number): void {
    this.refill();
    this.rate = rate;
    this.burst = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  /** Takes a token if there is one. */
  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is there (0: now). */
  waitMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, t - this.last) / 1000) * this.rate);
    this.last = t;
  }
}
