import type { PermissionKind, PermissionRequestRecord, PermissionScope, PermissionStatus, PermissionSubject, PermissionUser } from './store';

/** A permission_requests row as both stores return it. */
export interface PermissionRow {
  id: number;
  device_id: string;
  request_id: string;
  kind: string;
  subject: string;
  user_json: string;
  reason: string;
  created_at: string;
  status: string;
  decided_at: string | null;
  decided_by: string | null;
  note: string | null;
  expires_at: string | null;
  scope: string | null;
  decision_delivered_at: string | null;
}

export const PERMISSION_COLUMNS =
  'id, device_id, request_id, kind, subject, user_json, reason, created_at, status, decided_at, decided_by, note, expires_at, scope, decision_delivered_at';

export function permissionFromRow(r: PermissionRow): PermissionRequestRecord {
  return {
    deviceId: r.device_id,
    requestId: r.request_id,
    kind: r.kind as PermissionKind,
    subject: JSON.parse(r.subject) as PermissionSubject,
    user: JSON.parse(r.user_json) as PermissionUser,
    reason: r.reason,
    createdAt: r.created_at,
    status: r.status as PermissionStatus,
    decidedAt: r.decided_at,
    decidedBy: r.decided_by,
    note: r.note,
    expiresAt: r.expires_at,
    scope: r.scope as PermissionScope | null,
    decisionDeliveredAt: r.decision_delivered_at,
  };
}
