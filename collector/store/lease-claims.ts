import { randomBytes } from 'node:crypto';
import { MAX_VERDICT_LEASES, expiryOf, isoTime, userKey } from './lease-row';
import type { LeaseClaim, LeaseSummary, LeaseVerdict } from './store';

/** A claim with its times in stored form and its user key. */
export interface NormalClaim extends Omit<LeaseClaim, 'evict'> {
  key: string;
  expiresAt: string;
  /** The eviction reference the claim carries, unresolved. */
  evictRef?: string;
  /** The lease that reference names, once the store has resolved (and spent) it inside the claim's transaction. */
  evictTarget?: { deviceId: string; sessionId: string };
  /** When the references a refusal of this claim hands out stop working. */
  refExpiresAt?: string;
}

/** Throws (a RangeError) for a claim whose time is not a time: that claim fails alone, before any batch. */
export function normalClaim(c: LeaseClaim): NormalClaim {
  const now = isoTime(c.now);
  if (!Number.isFinite(c.leaseSeconds) || c.leaseSeconds <= 0) throw new RangeError(`leaseSeconds must be positive, not ${c.leaseSeconds}`);
  // Spelt out rather than spread: a thousand claims at once make the difference.
  const normal: NormalClaim = {
    deviceId: c.deviceId,
    hostname: c.hostname,
    user: c.user,
    sessionId: c.sessionId,
    role: c.role,
    now,
    leaseSeconds: c.leaseSeconds,
    limit: c.limit,
    key: userKey(c.user),
    expiresAt: expiryOf(now, c.leaseSeconds),
  };
  if (c.evict) normal.evictRef = c.evict.ref;
  if (c.maxUsersPerDevice !== undefined && c.maxUsersPerDevice !== null) normal.maxUsersPerDevice = c.maxUsersPerDevice;
  if (c.refSeconds !== undefined) {
    if (!Number.isFinite(c.refSeconds) || c.refSeconds <= 0) throw new RangeError(`refSeconds must be positive, not ${c.refSeconds}`);
    normal.refSeconds = c.refSeconds;
    normal.refExpiresAt = isoTime(Date.parse(now) + c.refSeconds * 1000);
  }
  return normal;
}

/** The eviction a claim's reference resolved to, unless it names the claimed session itself. */
export function evictionOf(c: NormalClaim): { deviceId: string; sessionId: string } | undefined {
  const t = c.evictTarget;
  return t && !(t.deviceId === c.deviceId && t.sessionId === c.sessionId) ? t : undefined;
}

/**
 * The per-device cap: a claim for a user holding no live lease on this device is refused when
 * the device already holds `maxUsersPerDevice` other users (not counting the claimed session,
 * which the device says is now this user's).
 */
export function isDeviceFull(c: NormalClaim, otherUsersHere: number, userHoldsHere: boolean): boolean {
  return c.maxUsersPerDevice !== undefined && c.maxUsersPerDevice !== null && !userHoldsHere && otherUsersHere >= c.maxUsersPerDevice;
}

/** An eviction reference: 128 random bits, opaque to the device, an identifier on the wire. */
export function newEvictionRef(): string {
  return `ev-${randomBytes(16).toString('base64url')}`;
}

/** The verdict's leases of a refused claim asking for references, each given a new one; unchanged otherwise. */
export function withRefs(c: NormalClaim, granted: boolean, leases: LeaseSummary[]): LeaseSummary[] {
  if (granted || c.refExpiresAt === undefined) return leases;
  return leases.map((l) => ({ ...l, ref: newEvictionRef() }));
}

/**
 * The rule, given the user's live leases as they stand when the claim is
 * decided: granted with no limit, when the user already holds this device, or
 * when the user's leases are on fewer than `limit` other devices.
 */
export function isGranted(c: LeaseClaim, liveDevices: readonly string[]): boolean {
  if (c.limit === null || liveDevices.includes(c.deviceId)) return true;
  return new Set(liveDevices).size < c.limit;
}

/** The user's other live leases for the verdict: all but the claimed session's, oldest first, capped. */
export function otherLeases(c: LeaseClaim, live: ReadonlyArray<LeaseSummary>): LeaseSummary[] {
  return live
    .filter((l) => !(l.deviceId === c.deviceId && l.sessionId === c.sessionId))
    .sort((a, b) => compare(a.since, b.since) || compare(a.deviceId, b.deviceId) || compare(a.sessionId, b.sessionId))
    .slice(0, MAX_VERDICT_LEASES);
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Splits a batch into rounds that can each be decided set-wise: within a
 * round no user and no (device, session) appears twice, and a user's (or a
 * session's) later claim is always in a later round than its earlier one,
 * so deciding round after round gives the answers deciding claim after claim
 * in arrival order would give.
 */
export function planRounds(claims: ReadonlyArray<NormalClaim>): number[] {
  const lastRound = new Map<string, number>();
  return claims.map((c) => {
    // The device too when it is capped: its count of users must see every earlier claim on it.
    const keys = [`u\n${c.key}`, `s\n${c.deviceId}\n${c.sessionId}`, ...(c.maxUsersPerDevice !== undefined ? [`d\n${c.deviceId}`] : [])];
    const evict = evictionOf(c);
    if (evict) keys.push(`s\n${evict.deviceId}\n${evict.sessionId}`);
    const round = Math.max(...keys.map((k) => lastRound.get(k) ?? -1)) + 1;
    for (const k of keys) lastRound.set(k, round);
    return round;
  });
}

/**
 * Splits a batch into at most `maxParts` parts that can be decided at the same
 * time on different connections without waiting for each other or changing
 * any answer: claims whose users share a lock (`lockOf`), or that name the
 * same session or the same capped device, stay in one part, in arrival order.
 * Parts are filled largest group first, so they come out about equal. A batch
 * smaller than two parts of `minPart` is not split, nor one with an eviction
 * reference: the session a reference names is known only once the transaction
 * has spent it, and another user's claim on that session must be decided after.
 */
export function splitIndependent(claims: ReadonlyArray<NormalClaim>, lockOf: (c: NormalClaim) => number, maxParts: number, minPart: number): number[][] {
  const parts = Math.min(maxParts, Math.floor(claims.length / minPart));
  if (parts < 2 || claims.some((c) => c.evictRef !== undefined)) return [claims.map((_, i) => i)];
  const parent = new Map<number, number>();
  const root = (x: number): number => {
    let r = x;
    while (parent.has(r) && parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  const lockOfKey = new Map<string, number>();
  const locks = claims.map((c) => {
    const lock = lockOf(c);
    if (!parent.has(lock)) parent.set(lock, lock);
    const keys = [`s\n${c.deviceId}\n${c.sessionId}`];
    if (c.maxUsersPerDevice !== undefined) keys.push(`d\n${c.deviceId}`);
    for (const k of keys) {
      const seen = lockOfKey.get(k);
      if (seen === undefined) lockOfKey.set(k, lock);
      else if (root(seen) !== root(lock)) parent.set(root(seen), root(lock));
    }
    return lock;
  });
  const groups = new Map<number, number[]>();
  locks.forEach((lock, i) => {
    const r = root(lock);
    let g = groups.get(r);
    if (!g) groups.set(r, (g = []));
    g.push(i);
  });
  const bins = Array.from({ length: parts }, () => [] as number[]);
  for (const g of [...groups.values()].sort((a, b) => b.length - a.length)) {
    bins.reduce((least, bin) => (bin.length < least.length ? bin : least)).push(...g);
  }
  return bins.filter((b) => b.length > 0).map((b) => b.sort((x, y) => x - y));
}

interface Pending {
  claim: NormalClaim;
  resolve: (verdict: LeaseVerdict) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for login claims, as for events: claims arriving while a
 * batch is being decided wait for the next, which the store decides in one
 * transaction (one commit, one fsync), in arrival order. One batch at a time
 * per store. A store that can decide independent parts of a batch at once
 * (`split`) gets each part as a transaction of its own, all started together;
 * a part that fails fails every claim in it, and only those.
 */
export class ClaimQueue {
  private pending: Pending[] = [];
  private running = false;

  constructor(
    private readonly decide: (batch: NormalClaim[]) => LeaseVerdict[] | Promise<LeaseVerdict[]>,
    /** Claims per transaction at most; more wait for the next. */
    private readonly maxBatch = 5000,
    private readonly split: (batch: NormalClaim[]) => number[][] = (batch) => [batch.map((_, i) => i)],
  ) {}

  submit(claim: LeaseClaim): Promise<LeaseVerdict> {
    let normal: NormalClaim;
    try {
      normal = normalClaim(claim);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ claim: normal, resolve, reject });
      if (this.running) return;
      this.running = true;
      setImmediate(() => void this.run());
    });
  }

  private async run(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      const parts = this.split(batch.map((p) => p.claim)).map((indexes) => indexes.map((i) => batch[i]!));
      await Promise.all(parts.map((part) => this.decidePart(part)));
    }
    this.running = false;
  }

  private async decidePart(part: Pending[]): Promise<void> {
    try {
      const verdicts = await this.decide(part.map((p) => p.claim));
      part.forEach((p, i) => p.resolve(verdicts[i]!));
    } catch (e) {
      for (const p of part) p.reject(e);
    }
  }
}
