import type { CodedError, Command } from '../../shared/protocol';
import type { CommandRecord } from './store';

/** A commands row as both stores return it; `ok` is 0/1 in SQLite and a boolean in PostgreSQL. */
export interface CommandRow {
  id: string;
  device_id: string;
  body: string;
  created_at: string;
  delivered_at: string | null;
  completed_at: string | null;
  ok: number | boolean | null;
  error: string | null;
}

export function commandFromRow(r: CommandRow): CommandRecord {
  return {
    id: r.id,
    deviceId: r.device_id,
    command: JSON.parse(r.body) as Command,
    createdAt: r.created_at,
    deliveredAt: r.delivered_at,
    completedAt: r.completed_at,
    ok: r.ok === null ? null : Boolean(r.ok),
    error: r.error === null ? null : (JSON.parse(r.error) as CodedError),
  };
}
