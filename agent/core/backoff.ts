/**
 * The one backoff: how long to wait before attempt `attempt` (0 first) of
 * something that keeps failing, doubling from `baseMs` up to `capMs`.
 *
 * With `random`, full jitter: a random delay between 0 and that ceiling, so
 * ten thousand laptops that lost the collector together do not come back
 * together (the link). Without it, the ceiling itself: a local helper process
 * restarted after it died (the udev monitor, the Windows process watch) has
 * no crowd to spread out, and a fixed delay keeps its logs and tests exact.
 */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random?: () => number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return random ? Math.floor(random() * ceiling) : ceiling;
}
