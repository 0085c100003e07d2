import { normalClaim, splitIndependent } from '../../collector/store/lease-claims';
import type { LeaseClaim } from '../../collector/store/store';

const claim = (deviceId: string, sessionId: string, user: string, overrides: Partial<LeaseClaim> = {}) =>
  normalClaim({ deviceId, hostname: deviceId, user, sessionId, role: 'pupil', now: '2026-11-23T09:00:00.000Z', leaseSeconds: 300, limit: 2, ...overrides });

/** A lock per user for these tests: the user's number. */
const lockOf = (c: { key: string }) => Number(c.key.replace(/\D/g, ''));

describe('splitting a burst of claims into parts decided at once', () => {
  it('leaves a batch smaller than two parts whole', () => {
    const batch = Array.from({ length: 7 }, (_, i) => claim(`dev-${i}`, 's', `u${i}`));
    expect(splitIndependent(batch, lockOf, 4, 4)).toEqual([[0, 1, 2, 3, 4, 5, 6]]);
  });

  it('splits independent claims into about equal parts, each in arrival order', () => {
    const batch = Array.from({ length: 100 }, (_, i) => claim(`dev-${i}`, 's', `u${i}`));
    const parts = splitIndependent(batch, lockOf, 4, 10);
    expect(parts).toHaveLength(4);
    expect(parts.map((p) => p.length)).toEqual([25, 25, 25, 25]);
    for (const p of parts) expect(p).toEqual([...p].sort((a, b) => a - b));
    expect(parts.flat().sort((a, b) => a - b)).toEqual(batch.map((_, i) => i));
  });

  it('keeps together the claims of users sharing a lock, a session or a capped device', () => {
    const batch = [
      claim('dev-a', 's-1', 'u1'), // 0: shares its lock with 1
      claim('dev-b', 's-1', 'u1'), // 1
      claim('dev-c', 's-9', 'u2'), // 2: shares dev-c/s-9 with 3
      claim('dev-c', 's-9', 'u3'), // 3
      claim('lab-1', 's-1', 'u4', { maxUsersPerDevice: 2 }), // 4: shares capped lab-1 with 5
      claim('lab-1', 's-2', 'u5', { maxUsersPerDevice: 2 }), // 5
      claim('dev-e', 's-1', 'u6'), // 6
      claim('dev-e', 's-1', 'u7'), // 7: the same session, now u7's
      ...Array.from({ length: 40 }, (_, i) => claim(`dev-x${i}`, 's', `u${100 + i}`)),
    ];
    const parts = splitIndependent(batch, lockOf, 4, 4);
    const partOf = (i: number) => parts.findIndex((p) => p.includes(i));
    expect(parts.length).toBe(4);
    expect(partOf(0)).toBe(partOf(1));
    expect(partOf(2)).toBe(partOf(3));
    expect(partOf(4)).toBe(partOf(5));
    expect(partOf(6)).toBe(partOf(7));
    expect(parts.flat()).toHaveLength(batch.length);
  });

  it('leaves whole a batch with an eviction reference, whose target is known only inside the transaction', () => {
    const batch = Array.from({ length: 40 }, (_, i) => claim(`dev-${i}`, 's', `u${i}`));
    batch[30]!.evictRef = 'ev-abc';
    expect(splitIndependent(batch, lockOf, 4, 4)).toEqual([batch.map((_, i) => i)]);
  });

  it('joins groups through a chain of shared keys', () => {
    // u1 and u2 share a session, u2 and u3 another: all three are one group.
    const batch = [
      claim('d1', 's', 'u1'),
      claim('d1', 's', 'u2'),
      claim('d2', 's', 'u2'),
      claim('d2', 's', 'u3'),
      claim('d3', 's', 'u3'),
      claim('d9', 's', 'u9'),
    ];
    const parts = splitIndependent(batch, lockOf, 2, 2);
    expect(parts).toEqual([[0, 1, 2, 3, 4], [5]]);
  });
});
