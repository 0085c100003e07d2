import type { CollectorStore } from '../../collector/store/store';

/** Everything the store holds for one device, paged through the real query API. */
export async function allEvents(store: CollectorStore, device: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  let cursor: string | undefined;
  for (let page = 0; page < 10_000; page++) {
    const result = await store.queryEvents({ device, limit: 1000, ...(cursor ? { cursor } : {}) });
    out.push(...result.events);
    if (!result.next) return out;
    cursor = result.next;
  }
  throw new Error('more pages than any test makes');
}

/**
 * Exactly once, checked three ways: sequence numbers run 1..N with no gap and
 * no repeat (nothing the outbox held was lost), every event id appears once
 * (nothing was stored twice), and every label the producer saw confirmed is there.
 */
export function checkExactlyOnce(events: Array<Record<string, unknown>>, confirmed: Iterable<number>): { seqs: number; labels: number } {
  const seqs = events.map((e) => e.seq as number).sort((a, b) => a - b);
  const expected = Array.from({ length: seqs.length }, (_, i) => i + 1);
  if (seqs.join(',') !== expected.join(',')) {
    const firstGap = seqs.findIndex((s, i) => s !== i + 1);
    throw new Error(
      `sequence numbers are not 1..${seqs.length} exactly once: first difference at position ${firstGap} (seq ${seqs[firstGap]}), highest ${seqs[seqs.length - 1]}`,
    );
  }
  const ids = new Set(events.map((e) => e.id));
  if (ids.size !== events.length) throw new Error(`${events.length - ids.size} events stored twice`);
  const labels = new Set(events.filter((e) => e.type === 'command.completed').map((e) => (e.data as { commandId: string }).commandId));
  const missing = [...confirmed].filter((k) => !labels.has(`k-${k}`));
  if (missing.length > 0) throw new Error(`${missing.length} confirmed events missing, e.g. k-${missing[0]}`);
  return { seqs: seqs.length, labels: labels.size };
}
