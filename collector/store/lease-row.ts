import type { LeaseRecord, LeaseSummary } from './store';

/** A leases row as both stores return it. */
export interface LeaseRow {
  device_id: string;
  session_id: string;
  user_name: string;
  role: string;
  hostname: string;
  since: string;
  expires_at: string;
}

export const LEASE_COLUMNS = 'device_id, session_id, user_name, role, hostname, since, expires_at';
/** The cursor of a page of live leases: the last row's (since, device, session), its place in the order (the lease itself may be gone by the next page). */
export const LEASE_CURSOR = 'lease';

/** Most leases a verdict lists, oldest first: what a refused user is offered (the notice shows ten). */
export const MAX_VERDICT_LEASES = 10;

/** User names are compared without regard to case: `Amy.P` and `amy.p` are one login. */
export function userKey(name: string): string {
  return name.toLowerCase();
}

/**
 * Times are stored as ISO text in one form (UTC, milliseconds, `Z`), so they
 * compare as text in the order they compare as instants.
 */
export function isoTime(time: string | number): string {
  // Claims decided together share one `now`: the last one checked is remembered.
  if (time === lastChecked) return time;
  // Already in that form (the collector's own clock, always): kept as it is, since formatting costs more than checking.
  if (typeof time === 'string' && STORED_FORM.test(time) && Number.isFinite(Date.parse(time))) return (lastChecked = time);
  const ms = typeof time === 'number' ? time : Date.parse(time);
  if (!Number.isFinite(ms)) throw new RangeError(`not a time: ${String(time)}`);
  return new Date(ms).toISOString();
}

const STORED_FORM = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
let lastChecked = '';

let lastExpiry = { now: '', leaseSeconds: 0, expiresAt: '' };

/** `now` (in stored form) plus the lease's seconds. A batch of claims shares one `now`, so the last answer is kept. */
export function expiryOf(now: string, leaseSeconds: number): string {
  if (lastExpiry.now !== now || lastExpiry.leaseSeconds !== leaseSeconds) {
    lastExpiry = { now, leaseSeconds, expiresAt: isoTime(Date.parse(now) + leaseSeconds * 1000) };
  }
  return lastExpiry.expiresAt;
}

export function leaseFromRow(r: LeaseRow): LeaseRecord {
  return {
    deviceId: r.device_id,
    sessionId: r.session_id,
    user: r.user_name,
    role: r.role,
    hostname: r.hostname,
    since: r.since,
    expiresAt: r.expires_at,
  };
}

export function summaryFromRow(r: Pick<LeaseRow, 'device_id' | 'hostname' | 'session_id' | 'since'>): LeaseSummary {
  return { deviceId: r.device_id, hostname: r.hostname, sessionId: r.session_id, since: r.since };
}
