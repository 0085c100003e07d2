import type { Policy } from './schema';

/**
 * How a new policy stands against the one in force, by revision. The collector
 * pushes its policy only to agents holding another id or revision, and users
 * are asked to agree again only on a new revision, so a change that keeps the
 * revision never reaches agents that already hold it.
 */
export type RevisionCheck =
  | { readonly kind: 'other-policy'; readonly previousId: string }
  | { readonly kind: 'same' }
  | { readonly kind: 'raised'; readonly previous: number }
  | { readonly kind: 'not-raised'; readonly previous: number; readonly changed: readonly string[] };

export function checkRevision(next: Policy, previous: Policy): RevisionCheck {
  if (next.id !== previous.id) return { kind: 'other-policy', previousId: previous.id };
  if (next.revision > previous.revision) return { kind: 'raised', previous: previous.revision };
  const keys = [...new Set([...Object.keys(next), ...Object.keys(previous)])].filter((k) => k !== 'revision').sort();
  const changed = keys.filter((k) => canonical((next as Record<string, unknown>)[k]) !== canonical((previous as Record<string, unknown>)[k]));
  if (changed.length === 0 && next.revision === previous.revision) return { kind: 'same' };
  return { kind: 'not-raised', previous: previous.revision, changed };
}

/** JSON with every object's keys in order, so that key order alone is no change. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
