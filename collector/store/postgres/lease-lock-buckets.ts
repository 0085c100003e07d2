/**
 * Which of `lock_lease_users`'s advisory locks a user takes, computed here
 * exactly as the server computes it (`hashtext(key) & 511`), so that a burst
 * of claims can be split into parts that share no lock and be decided on
 * several connections at once without waiting for each other.
 *
 * `hashtext` on a deterministic collation is PostgreSQL's `hash_bytes`
 * (src/common/hashfn.c, Bob Jenkins' lookup3) over the text's UTF-8 bytes; a
 * test checks this port against the real server. Were a server ever to
 * disagree (a big-endian build), parts would only wait for each other's
 * locks: the locks themselves are still taken by the server, so correctness
 * never rests on this file.
 */

/** Users share this many advisory locks; the same constant as the migration's function. */
export const LEASE_LOCK_BUCKETS = 512;

const rot = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** PostgreSQL's `hash_bytes` of these bytes, as an unsigned 32-bit number (little-endian byte order). */
export function hashBytes(k: Uint8Array): number {
  let len = k.length;
  let a = (0x9e3779b9 + len + 3923095) >>> 0;
  let b = a;
  let c = a;
  let p = 0;
  const word = (i: number) => (k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24)) >>> 0;
  while (len >= 12) {
    a = (a + word(p)) >>> 0;
    b = (b + word(p + 4)) >>> 0;
    c = (c + word(p + 8)) >>> 0;
    // mix(a, b, c)
    a = (a - c) >>> 0;
    a = (a ^ rot(c, 4)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rot(a, 6)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rot(b, 8)) >>> 0;
    b = (b + a) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rot(c, 16)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rot(a, 19)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rot(b, 4)) >>> 0;
    b = (b + a) >>> 0;
    p += 12;
    len -= 12;
  }
  // The tail, as the C switch falls through; the lowest byte of c is left for the length.
  if (len >= 11) c = (c + (k[p + 10]! << 24)) >>> 0;
  if (len >= 10) c = (c + (k[p + 9]! << 16)) >>> 0;
  if (len >= 9) c = (c + (k[p + 8]! << 8)) >>> 0;
  if (len >= 8) b = (b + (k[p + 7]! << 24)) >>> 0;
  if (len >= 7) b = (b + (k[p + 6]! << 16)) >>> 0;
  if (len >= 6) b = (b + (k[p + 5]! << 8)) >>> 0;
  if (len >= 5) b = (b + k[p + 4]!) >>> 0;
  if (len >= 4) a = (a + (k[p + 3]! << 24)) >>> 0;
  if (len >= 3) a = (a + (k[p + 2]! << 16)) >>> 0;
  if (len >= 2) a = (a + (k[p + 1]! << 8)) >>> 0;
  if (len >= 1) a = (a + k[p]!) >>> 0;
  // final(a, b, c)
  c = (c ^ b) >>> 0;
  c = (c - rot(b, 14)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rot(c, 11)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rot(a, 25)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rot(b, 16)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rot(c, 4)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rot(a, 14)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rot(b, 24)) >>> 0;
  return c;
}

/** The server's `hashtext(key)`: a signed 32-bit number. */
export function hashText(key: string): number {
  return hashBytes(Buffer.from(key, 'utf8')) | 0;
}

/** The advisory lock `lock_lease_users` takes for this user key. */
export function leaseLockBucket(key: string): number {
  return hashText(key) & (LEASE_LOCK_BUCKETS - 1);
}
