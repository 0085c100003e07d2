import { backoffDelay } from '../../../agent/core/backoff';

describe('backoffDelay', () => {
  it('doubles from the base up to the cap', () => {
    expect([0, 1, 2, 3, 5, 6, 7, 50].map((n) => backoffDelay(n, 1000, 60_000))).toEqual([1000, 2000, 4000, 8000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('with jitter, spreads each wait over 0 to that ceiling', () => {
    expect(backoffDelay(3, 1000, 60_000, () => 0)).toBe(0);
    expect(backoffDelay(3, 1000, 60_000, () => 0.5)).toBe(4000);
    expect(backoffDelay(3, 1000, 60_000, () => 0.999999)).toBe(7999);
    expect(backoffDelay(1e6, 1000, 5 * 60_000, () => 0.5)).toBe(150_000);
  });

  it('never gives a negative, infinite or NaN wait, however many attempts', () => {
    for (const attempt of [-1, 0, 1023, 1024, Number.MAX_SAFE_INTEGER]) {
      const delay = backoffDelay(attempt, 1000, 60_000, Math.random);
      expect(Number.isFinite(delay) && delay >= 0 && delay <= 60_000).toBe(true);
    }
  });
});
