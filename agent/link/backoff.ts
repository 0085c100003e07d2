/**
 * Full-jitter exponential backoff: a random delay between 0 and
 * min(cap, base * 2^attempt), so ten thousand laptops that lost the collector
 * together do not come back together.
 */
export function fullJitterDelay(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
