/**
 * A batch's seqs must rise strictly: the agent's outbox numbers events in the
 * order it records them, so a batch out of order (or with a seq twice) is a
 * broken or hostile peer. Returns the first seq that does not rise, with the
 * one before it; undefined for a batch in order.
 */
export function firstOutOfOrder(events: ReadonlyArray<{ seq: number }>): { seq: number; after: number } | undefined {
  for (let i = 1; i < events.length; i++) {
    const after = events[i - 1]!.seq;
    const seq = events[i]!.seq;
    if (seq <= after) return { seq, after };
  }
  return undefined;
}
