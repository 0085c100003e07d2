import type { EnrollmentApproval, EnrollmentTokenRecord } from './store';

/** An enrollment token's rate is counted in windows this long, each starting at the first enrollment after the last ended. */
export const ENROLLMENT_WINDOW_MS = 60_000;

/** An enrollment_tokens row as both stores return it: never the hash. */
export interface TokenRow {
  id: string;
  note: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  approval: EnrollmentApproval;
  max_uses: number;
  uses: number;
  per_minute: number;
  last_used_at: string | null;
}

export const TOKEN_COLUMNS = 'id, note, created_at, expires_at, revoked_at, approval, max_uses, uses, per_minute, last_used_at';

export function tokenFromRow(r: TokenRow): EnrollmentTokenRecord {
  return {
    id: r.id,
    note: r.note,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    approval: r.approval,
    maxUses: Number(r.max_uses),
    uses: Number(r.uses),
    perMinute: Number(r.per_minute),
    lastUsedAt: r.last_used_at,
  };
}
