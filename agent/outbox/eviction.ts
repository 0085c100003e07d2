import { SEVERITIES, type Severity } from '../../shared/protocol/primitives';

/** What the overflow rule knows of each unsent event. */
export interface EvictionCandidate {
  seq: number;
  severity: Severity;
  /** Caused by a person at the tray (a problem report), not observed by the agent. */
  userCaused: boolean;
}

/**
 * Event types that a person at the computer makes happen by asking. A pupil can
 * make a thousand of these a minute; none of them may push out what the agent
 * itself saw (issue 13: a thousand `alert` virus reports evicted the detection
 * of the game they were covering for).
 */
const USER_CAUSED_TYPES: ReadonlySet<string> = new Set(['problem.reported']);

export const isUserCaused = (type: unknown): boolean => typeof type === 'string' && USER_CAUSED_TYPES.has(type);

const SEVERITY_RANK: Record<Severity, number> = Object.fromEntries(SEVERITIES.map((s, i) => [s, i])) as Record<Severity, number>;

/**
 * The order in which events are dropped when the outbox is over its cap: the
 * tray's reports first, then the lowest severity; oldest first within each.
 */
export function evictionOrder(a: EvictionCandidate, b: EvictionCandidate): number {
  return Number(b.userCaused) - Number(a.userCaused) || SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || a.seq - b.seq;
}
