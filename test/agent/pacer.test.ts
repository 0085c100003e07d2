import { ASSUMED_COLLECTOR_LIMITS, MIN_FRAME_BUDGET_BYTES, Pacer, paceFor } from '../../agent/link/pacer';
import { TokenBucket } from '../../collector/rate-limiter';

describe('the link’s pacing', () => {
  it('keeps below every limit the collector gives, with room to spare', () => {
    expect(paceFor(ASSUMED_COLLECTOR_LIMITS, 500)).toEqual({ rate: 40, burst: 100, frameBytes: 786432, maxEvents: 500 });
    expect(paceFor({ messagesPerSecond: 1, messageBurst: 1, maxFrameBytes: 1024, maxEventsPerBatch: 10 }, 200)).toEqual({
      rate: 1,
      burst: 1,
      frameBytes: MIN_FRAME_BUDGET_BYTES,
      maxEvents: 10,
    });
  });

  it('never sends what the collector’s own bucket would refuse, however eagerly it is asked', () => {
    let now = 1_000_000;
    const clock = () => now;
    const limits = ASSUMED_COLLECTOR_LIMITS;
    const { rate, burst } = paceFor(limits, 500);
    const pacer = new Pacer(rate, burst, clock);
    const collector = new TokenBucket(limits.messagesPerSecond, limits.messageBurst, clock);
    let sent = 0;
    // Ten simulated seconds of a sender that tries every millisecond.
    for (let ms = 0; ms < 10_000; ms++, now++) {
      while (pacer.take()) {
        sent++;
        expect(collector.take()).toBe(true);
      }
    }
    expect(sent).toBeGreaterThanOrEqual(burst + 9 * rate);
    expect(sent).toBeLessThanOrEqual(burst + 10 * rate + 1);
  });

  it('says how long until the next token, and keeps what was spent when retuned', () => {
    let now = 0;
    const pacer = new Pacer(10, 2, () => now);
    expect(pacer.take() && pacer.take()).toBe(true);
    expect(pacer.take()).toBe(false);
    expect(pacer.waitMs()).toBe(100);
    now += 100;
    expect(pacer.waitMs()).toBe(0);
    pacer.retune(1, 5);
    expect(pacer.take()).toBe(true);
    expect(pacer.take()).toBe(false);
    expect(pacer.waitMs()).toBe(1000);
  });
});
