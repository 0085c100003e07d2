import pg from 'pg';
import type { CodedError, Command, EventEnvelope, EventType, Platform, Severity } from '../../../shared/protocol';
import { decodeCursor, decodeKeyCursor, encodeCursor, encodeKeyCursor } from '../cursor';
import {
  COLLECTOR_DEVICE_ID,
  type CollectorStore,
  type CommandRecord,
  type DeviceApproval,
  type DeviceAuth,
  type DeviceConnection,
  type DevicePageQuery,
  type DeviceRecord,
  type EnrollmentTokenRecord,
  type EventQuery,
  type InsertResult,
  type InstallationRecord,
  type LeaseClaim,
  type LeaseQuery,
  type LeaseRecord,
  type LeaseSummary,
  type LeaseVerdict,
  type NewCommand,
  type NewDevice,
  type NewEnrollmentToken,
  type NewPermissionRequest,
  type Page,
  type PermissionDecision,
  type PermissionRequestQuery,
  type PermissionRequestRecord,
  type SoftwareQuery,
  type SoftwareRecord,
  type StoredEvent,
  type UsableEnrollmentToken,
} from '../store';
import { InvigilatorError } from '../../../shared/errors';
import { PERMISSION_COLUMNS, type PermissionRow, permissionFromRow } from '../permission-row';
import { type CommandRow, commandFromRow } from '../command-row';
import { LEASE_COLUMNS, LEASE_CURSOR, type LeaseRow, expiryOf, isoTime, leaseFromRow, summaryFromRow, userKey } from '../lease-row';
import { ClaimQueue, type NormalClaim, evictionOf, isGranted, otherLeases, planRounds, splitIndependent, withRefs } from '../lease-claims';
import { leaseLockBucket } from './lease-lock-buckets';
import { StatementChain } from './statement-chain';
import { sqlIntArray, sqlTextArray } from './text-array';
import { ENROLLMENT_WINDOW_MS, TOKEN_COLUMNS, type TokenRow, tokenFromRow } from '../token-row';
import {
  SOFTWARE_COLUMNS,
  SOFTWARE_CURSOR,
  type ProgramState,
  type SoftwareChange,
  type SoftwareRow,
  changeRounds,
  isSoftwareEvent,
  nameKey,
  planSoftware,
  softwareChange,
  softwareFromRow,
} from '../software-row';
import { PROTOCOL_LIMITS } from '../../../shared/protocol/primitives';
import { DeviceSecretBox, SECRET_KEY_SETTING, keyMismatch } from '../device-secret-box';
import { POSTGRES_MIGRATIONS } from './migrations';

const CONNECTED_SQL = `UPDATE devices SET hostname = $1, agent_version = $2, policy_revision = $3, last_seen = $4, silent_since = NULL, connected_to = $5, presence_at = $4,
   confirmed_at = CASE WHEN $6::boolean AND confirmed_at IS NULL THEN $4 ELSE confirmed_at END
 WHERE id = $7`;
const connectedParams = (deviceId: string, c: DeviceConnection) => [c.hostname, c.agentVersion, c.policyRevision, c.now, c.instance, c.confirmed, deviceId];

interface DeviceRow {
  id: string;
  hostname: string;
  platform: Platform;
  agent_version: string;
  policy_revision: number | null;
  enrolled_at: string;
  last_seen: string | null;
  revoked_at: string | null;
  last_seq: number;
  connected_to: string | null;
  presence_at: string | null;
  approval: DeviceApproval;
  token_id: string;
  enrolled_from: string | null;
  decided_at: string | null;
  decided_by: string | null;
}

const DEVICE_COLUMNS =
  'id, hostname, platform, agent_version, policy_revision, enrolled_at, last_seen, revoked_at, last_seq, connected_to, presence_at, approval, token_id, enrolled_from, decided_at, decided_by';

function deviceFromRow(r: DeviceRow): DeviceRecord {
  return {
    id: r.id,
    hostname: r.hostname,
    platform: r.platform,
    agentVersion: r.agent_version,
    policyRevision: r.policy_revision,
    enrolledAt: r.enrolled_at,
    lastSeen: r.last_seen,
    revokedAt: r.revoked_at,
    lastSeq: r.last_seq,
    connectedTo: r.connected_to,
    presenceAt: r.presence_at,
    approval: r.approval,
    tokenId: r.token_id,
    enrolledFrom: r.enrolled_from,
    decidedAt: r.decided_at,
    decidedBy: r.decided_by,
  };
}

/** A user new to the store holds leases on no device. */
const NO_DEVICES: readonly string[] = [];

/**
 * A burst of claims is decided as at most this many transactions at once, each of at least CLAIMS_PER_PART
 * claims. One by default: with the database on the collector's own two cores, four parts made a
 * thousand-claim burst slower (p99 17-28 ms against 12-17 ms), their backends and the collector taking
 * turns on the same cores; parts pay only where the database server has cores of its own to spare.
 */
const CLAIM_PARTS = 1;
const CLAIMS_PER_PART = 128;

/** An arbitrary constant: every collector process takes this advisory lock while migrating, so only one migrates. */
const MIGRATION_LOCK = 74_616_801;

// BIGINT comes back as a string by default; our sequence numbers fit in 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

/**
 * The store for a local authority: several collector processes share one
 * PostgreSQL. Nothing that matters lives in one process's memory. A commit is
 * durable when it returns (synchronous_commit on, the server default), which
 * is what an acknowledgement promises.
 */
export class PostgresStore implements CollectorStore {
  readonly kind = 'postgres' as const;
  readonly pool: pg.Pool;
  private readonly secrets: DeviceSecretBox;
  private readonly maxPrograms: number;
  private readonly claimParts: number;

  /**
   * `secretKey`: the 32-byte key device secrets are sealed under (device-secret-box.ts); every collector on the database holds the same one.
   * `maxProgramsPerDevice`: the cap on each device's software list, by default the protocol's.
   * `claimParts`: how many transactions at most decide one burst of login claims at once.
   */
  constructor(connectionString: string, options: { secretKey: Buffer; poolSize?: number; maxProgramsPerDevice?: number; claimParts?: number }) {
    this.claimParts = options.claimParts ?? CLAIM_PARTS;
    this.secrets = new DeviceSecretBox(options.secretKey);
    this.maxPrograms = options.maxProgramsPerDevice ?? PROTOCOL_LIMITS.maxInstalledPrograms;
    this.pool = new pg.Pool({ connectionString, max: options.poolSize ?? 10, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000 });
    // An idle client that errors (server restart) must not crash the collector; the pool replaces it.
    this.pool.on('error', () => undefined);
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect();
    let sealed = 0;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
      const applied = Number((await client.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations')).rows[0]?.v ?? 0);
      for (let i = applied; i < POSTGRES_MIGRATIONS.length; i++) {
        await client.query(POSTGRES_MIGRATIONS[i]!);
        await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [i + 1, new Date().toISOString()]);
      }
      sealed = await this.sealSecrets(client);
      await this.fillNameKeys(client);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
    // The clear rows are dead tuples now, still in the table's files until they are rewritten. Once, after the upgrade.
    if (sealed > 0) await this.pool.query('VACUUM FULL devices');
  }

  /**
   * Inside the migration transaction (under its lock, so collectors starting together agree): refuses a
   * database sealed under another key, records this key for an empty one, and seals what an older
   * release stored in clear.
   */
  private async sealSecrets(client: pg.PoolClient): Promise<number> {
    const keyId = this.secrets.keyId;
    const held = (await client.query<{ value: string }>('SELECT value FROM collector_settings WHERE name = $1', [SECRET_KEY_SETTING])).rows[0];
    if (!held) await client.query('INSERT INTO collector_settings (name, value) VALUES ($1, $2)', [SECRET_KEY_SETTING, keyId]);
    else if (held.value !== keyId) throw keyMismatch(held.value);
    const { rows } = await client.query<{ id: string; secret: Buffer }>('SELECT id, secret FROM devices WHERE secret_key_id IS NULL FOR UPDATE');
    for (const d of rows)
      await client.query('UPDATE devices SET secret = $1, secret_key_id = $2 WHERE id = $3', [this.secrets.seal(d.id, d.secret), keyId, d.id]);
    return rows.length;
  }

  /** Programs stored before the list was sorted in SQL get their sort key (JavaScript's case folding, as for new rows). */
  private async fillNameKeys(client: pg.PoolClient): Promise<void> {
    const { rows } = await client.query<{ device_id: string; program_key: string; name: string }>(
      'SELECT device_id, program_key, name FROM software WHERE name_key IS NULL',
    );
    if (rows.length === 0) return;
    await client.query(
      `UPDATE software s SET name_key = x.k FROM unnest($1::text[], $2::text[], $3::text[]) AS x(d, p, k) WHERE s.device_id = x.d AND s.program_key = x.p`,
      [rows.map((r) => r.device_id), rows.map((r) => r.program_key), rows.map((r) => nameKey(r.name))],
    );
  }

  /** A row's secret: sealed (under this database's one key), or in clear if an older release wrote it since this store opened. */
  private secretOf(deviceId: string, row: { secret: Buffer; secret_key_id: string | null }): Buffer {
    if (row.secret_key_id === null) return row.secret;
    if (row.secret_key_id !== this.secrets.keyId) throw keyMismatch(row.secret_key_id);
    return this.secrets.open(deviceId, row.secret);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async createEnrollmentToken(t: NewEnrollmentToken): Promise<void> {
    await this.pool.query(
      'INSERT INTO enrollment_tokens (id, token_hash, note, created_at, expires_at, approval, max_uses, per_minute) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [t.id, t.tokenHash, t.note, t.createdAt, t.expiresAt, t.approval, t.maxUses, t.perMinute],
    );
  }

  async findUsableEnrollmentToken(tokenHash: string, now: string): Promise<UsableEnrollmentToken | undefined> {
    const { rows } = await this.pool.query<{ id: string; approval: UsableEnrollmentToken['approval']; uses: number; max_uses: number }>(
      'SELECT id, approval, uses, max_uses FROM enrollment_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2',
      [tokenHash, now],
    );
    const row = rows[0];
    return row && { id: row.id, approval: row.approval, uses: row.uses, maxUses: row.max_uses };
  }

  async useEnrollmentToken(id: string, now: string): Promise<'used' | 'used-up' | 'rate-limited'> {
    const cutoff = new Date(Date.parse(now) - ENROLLMENT_WINDOW_MS).toISOString();
    // One statement, so of processes racing for the last use exactly one wins (the row lock orders them). SET sees the row as it was.
    const { rowCount } = await this.pool.query(
      `UPDATE enrollment_tokens SET uses = uses + 1,
         window_uses = CASE WHEN window_start > $1 THEN window_uses + 1 ELSE 1 END,
         window_start = CASE WHEN window_start > $1 THEN window_start ELSE $2 END,
         last_used_at = $2
       WHERE id = $3 AND revoked_at IS NULL AND uses < max_uses AND (window_start IS NULL OR window_start <= $1 OR window_uses < per_minute)`,
      [cutoff, now, id],
    );
    if ((rowCount ?? 0) > 0) return 'used';
    const { rows } = await this.pool.query<{ uses: number; max_uses: number; revoked_at: string | null }>(
      'SELECT uses, max_uses, revoked_at FROM enrollment_tokens WHERE id = $1',
      [id],
    );
    const row = rows[0];
    return !row || row.revoked_at !== null || row.uses >= row.max_uses ? 'used-up' : 'rate-limited';
  }

  async revokeEnrollmentToken(id: string, now: string): Promise<boolean> {
    return ((await this.pool.query('UPDATE enrollment_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [now, id])).rowCount ?? 0) > 0;
  }

  async listEnrollmentTokens(): Promise<EnrollmentTokenRecord[]> {
    const { rows } = await this.pool.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM enrollment_tokens ORDER BY created_at, id`);
    return rows.map(tokenFromRow);
  }

  async enrollDevice(d: NewDevice): Promise<void> {
    await this.pool.query(
      `INSERT INTO devices (id, installation_id, secret, secret_key_id, hostname, platform, agent_version, token_id, enrolled_at, last_seen, approval, enrolled_from)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)`,
      [
        d.id,
        d.installationId,
        this.secrets.seal(d.id, d.secret),
        this.secrets.keyId,
        d.hostname,
        d.platform,
        d.agentVersion,
        d.tokenId,
        d.now,
        d.approval,
        d.enrolledFrom,
      ],
    );
  }

  async deviceByInstallation(installationId: string): Promise<InstallationRecord | undefined> {
    const { rows } = await this.pool.query<{
      id: string;
      secret: Buffer;
      secret_key_id: string | null;
      confirmed_at: string | null;
      revoked_at: string | null;
      approval: DeviceApproval;
    }>('SELECT id, secret, secret_key_id, confirmed_at, revoked_at, approval FROM devices WHERE installation_id = $1', [installationId]);
    const row = rows[0];
    return (
      row && {
        deviceId: row.id,
        secret: this.secretOf(row.id, row),
        confirmed: row.confirmed_at !== null,
        revoked: row.revoked_at !== null,
        approval: row.approval,
      }
    );
  }

  async deviceAuth(deviceId: string): Promise<DeviceAuth | undefined> {
    const { rows } = await this.pool.query<{
      secret: Buffer;
      secret_key_id: string | null;
      revoked_at: string | null;
      last_seq: number;
      approval: DeviceApproval;
    }>('SELECT secret, secret_key_id, revoked_at, last_seq, approval FROM devices WHERE id = $1', [deviceId]);
    const row = rows[0];
    return row && { secret: this.secretOf(deviceId, row), revoked: row.revoked_at !== null, lastSeq: row.last_seq, approval: row.approval };
  }

  async decideDevice(deviceId: string, decision: 'approved' | 'refused', now: string, by: string): Promise<boolean> {
    const sql =
      decision === 'approved'
        ? "UPDATE devices SET approval = 'approved', decided_at = $1, decided_by = $2 WHERE id = $3 AND approval = 'pending' AND revoked_at IS NULL"
        : "UPDATE devices SET approval = 'refused', decided_at = $1, decided_by = $2, revoked_at = COALESCE(revoked_at, $1) WHERE id = $3 AND approval = 'pending'";
    return ((await this.pool.query(sql, [now, by, deviceId])).rowCount ?? 0) > 0;
  }

  async revokeDevice(deviceId: string, now: string): Promise<boolean> {
    return ((await this.pool.query('UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [now, deviceId])).rowCount ?? 0) > 0;
  }

  async deviceConnected(deviceId: string, c: DeviceConnection): Promise<void> {
    await this.pool.query(CONNECTED_SQL, connectedParams(deviceId, c));
  }

  async listDevices(): Promise<DeviceRecord[]> {
    const { rows } = await this.pool.query<DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices ORDER BY hostname, id`);
    return rows.map(deviceFromRow);
  }

  async listDevicePage(query: DevicePageQuery): Promise<{ devices: DeviceRecord[]; next: string | null }> {
    const after = query.cursor === undefined ? undefined : decodeKeyCursor('device', query.cursor, 1)?.[0];
    if (query.cursor !== undefined && after === undefined) return { devices: [], next: null };
    // The filter is part of the page query, so a page holds `limit` matching devices, not `limit` devices filtered.
    const where: string[] = [];
    const args: unknown[] = [];
    if (query.approval !== undefined) {
      args.push(query.approval);
      where.push(`approval = $${args.length}`);
    }
    if (after !== undefined) {
      args.push(after);
      where.push(`(hostname COLLATE "C", id COLLATE "C") > (SELECT hostname, id FROM devices WHERE id = $${args.length})`);
    }
    args.push(query.limit + 1);
    // Byte order (COLLATE "C"), as SQLite compares, whatever the database's collation: the cursor's comparison and the order must agree.
    const { rows } = await this.pool.query<DeviceRow>(
      `SELECT ${DEVICE_COLUMNS} FROM devices ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY hostname COLLATE "C", id COLLATE "C" LIMIT $${args.length}`,
      args,
    );
    const devices = rows.slice(0, query.limit).map(deviceFromRow);
    return { devices, next: rows.length > query.limit ? encodeKeyCursor('device', [devices[devices.length - 1]!.id]) : null };
  }

  async insertEvents(deviceId: string, events: readonly EventEnvelope[], receivedAt: string): Promise<InsertResult> {
    return (await this.insertEventBatches([{ deviceId, events }], receivedAt))[0]!;
  }

  async insertEventBatches(
    batches: ReadonlyArray<{ deviceId: string; events: readonly EventEnvelope[] }>,
    receivedAt: string,
    connections: ReadonlyArray<{ deviceId: string; connection: DeviceConnection }> = [],
  ): Promise<InsertResult[]> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      for (const { deviceId, connection } of connections) await client.query(CONNECTED_SQL, connectedParams(deviceId, connection));
      const results: InsertResult[] = [];
      for (const { deviceId, events } of batches) results.push(await this.storeBatch(client, deviceId, events, receivedAt));
      await client.query('COMMIT');
      return results;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  /**
   * One device's batch inside the ingest transaction. A refused batch deletes what its own statement
   * inserted, so it leaves nothing behind while the other batches of the transaction are kept.
   */
  private async storeBatch(client: pg.PoolClient, deviceId: string, events: readonly EventEnvelope[], receivedAt: string): Promise<InsertResult> {
    // One statement per batch: arrays in, ON CONFLICT makes a resend a no-op; the seqs it stored come back.
    const inserted = await client.query<{ seq: number }>(
      `INSERT INTO events (device_id, seq, event_id, time_ms, received_at, type, severity, user_name, body)
       SELECT $1, s, i, t, $2, ty, sv, u, b
       FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[]) AS x(s, i, t, ty, sv, u, b)
       ON CONFLICT (device_id, seq) DO NOTHING RETURNING seq`,
      [
        deviceId,
        receivedAt,
        events.map((e) => e.seq),
        events.map((e) => e.id),
        events.map((e) => Date.parse(e.time)),
        events.map((e) => e.type),
        events.map((e) => e.severity),
        events.map((e) => e.user?.name ?? null),
        events.map((e) => JSON.stringify(e)),
      ],
    );
    const storedSeqs = inserted.rows.map((r) => Number(r.seq));
    const undo = async (): Promise<number> => {
      if (storedSeqs.length > 0) await client.query('DELETE FROM events WHERE device_id = $1 AND seq = ANY($2::bigint[])', [deviceId, storedSeqs]);
      const { rows } = await client.query<{ last_seq: number }>('SELECT last_seq FROM devices WHERE id = $1', [deviceId]);
      return Number(rows[0]?.last_seq ?? 0);
    };
    // Something was not stored: a resend if its seq holds this very event, else another event under a stored seq.
    if (storedSeqs.length < events.length) {
      const { rows } = await client.query<{ seq: number; event_id: string }>(
        'SELECT seq, event_id FROM events WHERE device_id = $1 AND seq = ANY($2::bigint[])',
        [deviceId, events.map((e) => e.seq)],
      );
      const held = new Map(rows.map((r) => [Number(r.seq), r.event_id]));
      const conflict = events.find((e) => held.get(e.seq) !== e.id);
      if (conflict) return { inserted: 0, lastSeq: await undo(), refused: { code: 'INV_ERR_SEQ_CONFLICT', seq: conflict.seq } };
    }
    const maxSeq = events.reduce((m, e) => Math.max(m, e.seq), 0);
    // The device row's lock orders this against a revocation: committed first, it is seen here and nothing is kept.
    const { rows } = await client.query<{ last_seq: number }>(
      'UPDATE devices SET last_seq = GREATEST(last_seq, $1), last_seen = $2, silent_since = NULL WHERE id = $3 AND revoked_at IS NULL RETURNING last_seq',
      [maxSeq, receivedAt, deviceId],
    );
    if (rows.length === 0) {
      const { rows: device } = await client.query<{ revoked_at: string | null }>('SELECT revoked_at FROM devices WHERE id = $1', [deviceId]);
      if (device[0] && device[0].revoked_at !== null) return { inserted: 0, lastSeq: await undo(), refused: { code: 'INV_ERR_DEVICE_REVOKED' } };
    }
    const refused = events.some((e) => isSoftwareEvent(e.type)) ? await this.applySoftware(client, deviceId, events, storedSeqs, receivedAt) : undefined;
    return { inserted: storedSeqs.length, lastSeq: rows[0] ? Number(rows[0].last_seq) : maxSeq, ...(refused ? { softwareRefused: refused } : {}) };
  }

  /**
   * Inside the ingest transaction: the software events this statement stored (a resend stored nothing),
   * planned against what the device's list holds (planSoftware: in sequence order, each over an earlier
   * event only, no new program past the cap), then applied in rounds (one statement each, see
   * changeRounds). The device's row is locked first, so two processes storing one device's overlapping
   * resends plan one after the other (the cap holds exactly) and take the software rows' locks in the
   * same order. Returns what was refused, if anything.
   */
  private async applySoftware(
    client: pg.PoolClient,
    deviceId: string,
    events: readonly EventEnvelope[],
    stored: readonly number[],
    receivedAt: string,
  ): Promise<InsertResult['softwareRefused']> {
    const storedSeqs = new Set(stored);
    const changes: SoftwareChange[] = [];
    for (const e of events) {
      // The first event with a seq is the one stored (as on SQLite); a later one with the same seq was not.
      if (!storedSeqs.delete(e.seq)) continue;
      const change = softwareChange(e);
      if (change) changes.push(change);
    }
    if (changes.length === 0) return undefined;
    await client.query('SELECT 1 FROM devices WHERE id = $1 FOR UPDATE', [deviceId]);
    const { rows: heldRows } = await client.query<{ program_key: string; present: boolean; seq: number }>(
      'SELECT program_key, present, seq FROM software WHERE device_id = $1 AND program_key = ANY($2::text[])',
      [deviceId, [...new Set(changes.map((c) => c.key))]],
    );
    const held = new Map(heldRows.map((r): [string, ProgramState] => [r.program_key, { present: r.present, seq: Number(r.seq) }]));
    const listed = Number(
      (await client.query<{ n: number }>('SELECT COUNT(*)::bigint AS n FROM software WHERE device_id = $1 AND present', [deviceId])).rows[0]?.n ?? 0,
    );
    const plan = planSoftware(changes, held, listed, this.maxPrograms);
    for (const rows of changeRounds(plan.apply)) await this.applyRound(client, deviceId, rows, receivedAt);
    if (plan.refused > 0) {
      const marked = await client.query('UPDATE devices SET software_full_at = $1 WHERE id = $2 AND software_full_at IS NULL', [receivedAt, deviceId]);
      return { programs: plan.refused, newlyFull: (marked.rowCount ?? 0) > 0, cap: this.maxPrograms };
    }
    if (plan.present < this.maxPrograms)
      await client.query('UPDATE devices SET software_full_at = NULL WHERE id = $1 AND software_full_at IS NOT NULL', [deviceId]);
    return undefined;
  }

  private async applyRound(client: pg.PoolClient, deviceId: string, rows: readonly SoftwareChange[], receivedAt: string): Promise<void> {
    await client.query(
      `INSERT INTO software (device_id, program_key, source, name, name_key, version, publisher, present, seq, since, changed_at)
       SELECT $1, k, so, na, nk, ve, pu, pr, sq, si, $2
       FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::boolean[], $10::bigint[], $11::text[])
         AS x(k, so, na, nk, ve, pu, pr, sq, si)
       ON CONFLICT (device_id, program_key) DO UPDATE SET
         publisher = CASE WHEN EXCLUDED.present THEN EXCLUDED.publisher ELSE software.publisher END,
         since = CASE WHEN EXCLUDED.present AND software.present THEN software.since ELSE EXCLUDED.since END,
         present = EXCLUDED.present, seq = EXCLUDED.seq, changed_at = EXCLUDED.changed_at, name_key = EXCLUDED.name_key
       WHERE software.seq < EXCLUDED.seq`,
      [
        deviceId,
        receivedAt,
        rows.map((r) => r.key),
        rows.map((r) => r.source),
        rows.map((r) => r.name),
        rows.map((r) => r.nameKey),
        rows.map((r) => r.version),
        rows.map((r) => r.publisher),
        rows.map((r) => r.present),
        rows.map((r) => r.seq),
        rows.map((r) => r.time),
      ],
    );
  }

  async listSoftware(deviceId: string, query: SoftwareQuery): Promise<{ software: SoftwareRecord[]; next: string | null }> {
    const after = query.cursor === undefined ? undefined : decodeKeyCursor(SOFTWARE_CURSOR, query.cursor, 1)?.[0];
    if (query.cursor !== undefined && after === undefined) return { software: [], next: null };
    const args: Array<string | number> = [deviceId];
    const where = ['device_id = $1', 'present'];
    if (query.q !== undefined) {
      args.push(nameKey(query.q));
      where.push(`strpos(name_key, $${args.length}) > 0`);
    }
    // Byte order (COLLATE "C", which is code point order in UTF-8), as SQLite compares, whatever the database's collation.
    const key = 'name_key COLLATE "C", name COLLATE "C", version COLLATE "C", source COLLATE "C"';
    if (after !== undefined) {
      args.push(after);
      where.push(`(${key}) > (SELECT name_key, name, version, source FROM software WHERE device_id = $1 AND program_key = $${args.length})`);
    }
    args.push(query.limit + 1);
    const { rows } = await this.pool.query<SoftwareRow>(
      `SELECT ${SOFTWARE_COLUMNS} FROM software WHERE ${where.join(' AND ')} ORDER BY ${key} LIMIT $${args.length}`,
      args,
    );
    const page = rows.slice(0, query.limit);
    return {
      software: page.map(softwareFromRow),
      next: rows.length > query.limit ? encodeKeyCursor(SOFTWARE_CURSOR, [page[page.length - 1]!.program_key]) : null,
    };
  }

  async queryEvents(q: EventQuery): Promise<{ events: StoredEvent[]; next: string | null }> {
    const where: string[] = [];
    const args: Array<string | number> = [];
    const add = (column: string, op: string, value: string | number | undefined) => {
      if (value === undefined) return;
      args.push(value);
      where.push(`${column} ${op} $${args.length}`);
    };
    add('device_id', '=', q.device);
    add('type', '=', q.type);
    add('user_name', '=', q.user);
    add('severity', '=', q.severity);
    add('time_ms', '>=', q.since === undefined ? undefined : Date.parse(q.since));
    add('time_ms', '<', q.until === undefined ? undefined : Date.parse(q.until));
    add('ingest_id', '>', q.cursor === undefined ? undefined : decodeCursor(q.cursor));
    args.push(q.limit + 1);
    const { rows } = await this.pool.query<{ ingest_id: number; received_at: string; body: string }>(
      `SELECT ingest_id, received_at, body FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ingest_id LIMIT $${args.length}`,
      args,
    );
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      events: page.map((r) => ({ ...(JSON.parse(r.body) as Record<string, unknown>), receivedAt: r.received_at })),
      next: rows.length > q.limit && last ? encodeCursor(last.ingest_id) : null,
    };
  }

  async countEvents(): Promise<number> {
    return Number((await this.pool.query<{ n: number }>('SELECT COUNT(*)::bigint AS n FROM events')).rows[0]?.n ?? 0);
  }

  async clearDevicePresence(deviceId: string, instance: string): Promise<void> {
    await this.pool.query('UPDATE devices SET connected_to = NULL WHERE id = $1 AND connected_to = $2', [deviceId, instance]);
  }

  async refreshPresence(instance: string, now: string): Promise<string[]> {
    // One round trip; only the revoked few come back.
    const { rows } = await this.pool.query<{ id: string }>(
      `WITH held AS (UPDATE devices SET presence_at = $1, last_seen = $1, silent_since = NULL WHERE connected_to = $2 RETURNING id, revoked_at)
       SELECT id FROM held WHERE revoked_at IS NOT NULL`,
      [now, instance],
    );
    return rows.map((r) => r.id);
  }

  async clearPresence(instance: string): Promise<void> {
    await this.pool.query('UPDATE devices SET connected_to = NULL WHERE connected_to = $1', [instance]);
  }

  async createCommand(c: { id: string; deviceId: string; command: Command; createdAt: string }): Promise<void> {
    await this.pool.query('INSERT INTO commands (id, device_id, body, created_at) VALUES ($1, $2, $3, $4)', [
      c.id,
      c.deviceId,
      JSON.stringify(c.command),
      c.createdAt,
    ]);
  }

  async undeliveredCommands(deviceId: string): Promise<CommandRecord[]> {
    const { rows } = await this.pool.query<CommandRow>('SELECT * FROM commands WHERE device_id = $1 AND delivered_at IS NULL ORDER BY created_at, id', [
      deviceId,
    ]);
    return rows.map(commandFromRow);
  }

  async markCommandDelivered(id: string, now: string): Promise<void> {
    await this.pool.query('UPDATE commands SET delivered_at = $1 WHERE id = $2 AND delivered_at IS NULL', [now, id]);
  }

  async undoCommandDelivery(id: string): Promise<void> {
    await this.pool.query('UPDATE commands SET delivered_at = NULL WHERE id = $1 AND completed_at IS NULL', [id]);
  }

  async completeCommand(id: string, r: { ok: boolean; error: CodedError | null; now: string }): Promise<boolean> {
    const result = await this.pool.query(
      'UPDATE commands SET completed_at = $1, ok = $2, error = $3, delivered_at = COALESCE(delivered_at, $1) WHERE id = $4 AND completed_at IS NULL',
      [r.now, r.ok, r.error ? JSON.stringify(r.error) : null, id],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async getCommand(id: string): Promise<CommandRecord | undefined> {
    const { rows } = await this.pool.query<CommandRow>('SELECT * FROM commands WHERE id = $1', [id]);
    return rows[0] && commandFromRow(rows[0]);
  }

  async claimNewlySilent(cutoff: string, now: string): Promise<Array<{ id: string; hostname: string; lastSeen: string }>> {
    const { rows } = await this.pool.query<{ id: string; hostname: string; last_seen: string }>(
      'UPDATE devices SET silent_since = $1 WHERE silent_since IS NULL AND revoked_at IS NULL AND last_seen < $2 RETURNING id, hostname, last_seen',
      [now, cutoff],
    );
    return rows.map((r) => ({ id: r.id, hostname: r.hostname, lastSeen: r.last_seen }));
  }

  async insertCollectorEvent(e: { id: string; time: string; type: EventType; severity: Severity; data: unknown }, receivedAt: string): Promise<EventEnvelope> {
    const seq = Number((await this.pool.query<{ s: number }>("SELECT nextval('collector_event_seq') AS s")).rows[0]!.s);
    const envelope = { ...e, deviceId: COLLECTOR_DEVICE_ID, seq } as EventEnvelope;
    await this.pool.query(
      'INSERT INTO events (device_id, seq, event_id, time_ms, received_at, type, severity, user_name, body) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)',
      [COLLECTOR_DEVICE_ID, seq, e.id, Date.parse(e.time), receivedAt, e.type, e.severity, JSON.stringify(envelope)],
    );
    return envelope;
  }

  async createApiToken(t: { id: string; tokenHash: string; role: 'admin' | 'readonly'; createdAt: string }): Promise<void> {
    await this.pool.query('INSERT INTO api_tokens (id, token_hash, role, created_at) VALUES ($1, $2, $3, $4)', [t.id, t.tokenHash, t.role, t.createdAt]);
  }

  async apiTokenRole(tokenHash: string): Promise<'admin' | 'readonly' | undefined> {
    const { rows } = await this.pool.query<{ role: 'admin' | 'readonly' }>('SELECT role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL', [
      tokenHash,
    ]);
    return rows[0]?.role;
  }

  async hasApiToken(role: 'admin' | 'readonly'): Promise<boolean> {
    return (await this.pool.query('SELECT 1 FROM api_tokens WHERE role = $1 AND revoked_at IS NULL LIMIT 1', [role])).rows.length > 0;
  }

  async apiToken(tokenHash: string): Promise<{ id: string; role: 'admin' | 'readonly' } | undefined> {
    const { rows } = await this.pool.query<{ id: string; role: 'admin' | 'readonly' }>(
      'SELECT id, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL',
      [tokenHash],
    );
    return rows[0];
  }

  async createPermissionRequest(r: NewPermissionRequest): Promise<{ created: boolean; record: PermissionRequestRecord }> {
    const inserted = await this.pool.query(
      `INSERT INTO permission_requests (device_id, request_id, kind, subject, user_json, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (device_id, request_id) DO NOTHING`,
      [r.deviceId, r.requestId, r.kind, JSON.stringify(r.subject), JSON.stringify(r.user), r.reason, r.createdAt],
    );
    const record = await this.getPermissionRequest(r.deviceId, r.requestId);
    if (!record) throw new InvigilatorError('INV_ERR_STORE_FAILED', 'a permission request vanished as it was stored');
    return { created: (inserted.rowCount ?? 0) > 0, record };
  }

  async getPermissionRequest(deviceId: string, requestId: string, client: pg.Pool | pg.PoolClient = this.pool): Promise<PermissionRequestRecord | undefined> {
    const { rows } = await client.query<PermissionRow>(`SELECT ${PERMISSION_COLUMNS} FROM permission_requests WHERE device_id = $1 AND request_id = $2`, [
      deviceId,
      requestId,
    ]);
    return rows[0] && permissionFromRow(rows[0]);
  }

  async listPermissionRequests(q: PermissionRequestQuery): Promise<{ requests: PermissionRequestRecord[]; next: string | null }> {
    const where: string[] = [];
    const args: Array<string | number> = [];
    const add = (column: string, op: string, value: string | number | undefined) => {
      if (value === undefined) return;
      args.push(value);
      where.push(`${column} ${op} $${args.length}`);
    };
    add('status', '=', q.status);
    add('device_id', '=', q.device);
    add('id', '<', q.cursor === undefined ? undefined : decodeCursor(q.cursor));
    args.push(q.limit + 1);
    const { rows } = await this.pool.query<PermissionRow>(
      `SELECT ${PERMISSION_COLUMNS} FROM permission_requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${args.length}`,
      args,
    );
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return { requests: page.map(permissionFromRow), next: rows.length > q.limit && last ? encodeCursor(last.id) : null };
  }

  async decidePermissionRequest(deviceId: string, requestId: string, d: PermissionDecision, commands: readonly NewCommand[]): Promise<PermissionRequestRecord> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // Conditional: of processes racing to decide, the first to update wins; the others update nothing.
      const { rows } = await client.query<PermissionRow>(
        `UPDATE permission_requests SET status = $1, decided_at = $2, decided_by = $3, note = $4, expires_at = $5, scope = $6
         WHERE device_id = $7 AND request_id = $8 AND status = 'pending'
         RETURNING ${PERMISSION_COLUMNS}`,
        [d.decision, d.decidedAt, d.decidedBy, d.note, d.expiresAt, d.scope, deviceId, requestId],
      );
      if (!rows[0]) {
        const existing = await this.getPermissionRequest(deviceId, requestId, client);
        if (!existing) throw new InvigilatorError('INV_ERR_PERMISSION_NOT_FOUND', `${deviceId}/${requestId}`);
        throw new InvigilatorError('INV_ERR_PERMISSION_DECIDED', `${deviceId}/${requestId} was ${existing.status}`);
      }
      for (const c of commands) {
        await client.query('INSERT INTO commands (id, device_id, body, created_at) VALUES ($1, $2, $3, $4)', [
          c.id,
          c.deviceId,
          JSON.stringify(c.command),
          c.createdAt,
        ]);
      }
      await client.query('COMMIT');
      return permissionFromRow(rows[0]);
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  async undeliveredDecisions(deviceId: string): Promise<PermissionRequestRecord[]> {
    const { rows } = await this.pool.query<PermissionRow>(
      `SELECT ${PERMISSION_COLUMNS} FROM permission_requests WHERE device_id = $1 AND decision_delivered_at IS NULL AND status <> 'pending' ORDER BY decided_at, id`,
      [deviceId],
    );
    return rows.map(permissionFromRow);
  }

  async claimDecisionDelivery(deviceId: string, requestId: string, now: string): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE permission_requests SET decision_delivered_at = $1 WHERE device_id = $2 AND request_id = $3 AND status <> 'pending' AND decision_delivered_at IS NULL`,
      [now, deviceId, requestId],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async undoDecisionDelivery(deviceId: string, requestId: string): Promise<void> {
    await this.pool.query('UPDATE permission_requests SET decision_delivered_at = NULL WHERE device_id = $1 AND request_id = $2', [deviceId, requestId]);
  }

  /**
   * Group commit, as for events: claims arriving together are decided in one
   * transaction (see decideClaims). A burst (a Monday morning) is split into
   * parts that share no user lock, session or capped device, each decided on a
   * connection of its own at the same time: the server's work for a thousand
   * claims is spread over its cores instead of queued on one backend.
   */
  private readonly claims = new ClaimQueue(
    (batch) => this.decideWithRetry(batch),
    2000,
    (batch) => splitIndependent(batch, (c) => leaseLockBucket(c.key), this.claimParts, CLAIMS_PER_PART),
  );

  async claimLease(claim: LeaseClaim): Promise<LeaseVerdict> {
    return this.claims.submit(claim);
  }

  /**
   * One transaction for a batch. First it takes the transaction-scoped
   * advisory locks of the batch's users (`lock_lease_users`: one per bucket of
   * users, in ascending order on every process), so each user's claims are
   * decided one batch at a time across all collector processes. Then it spends
   * the batch's eviction references (each is bound to one user, so the same
   * locks cover them), and round by round (planRounds: at most one claim per
   * user, per session and per capped device in a round) it deletes the users'
   * dead and stale leases, reads the live ones, decides each claim by the same
   * rule as SQLite (isDeviceFull, isGranted), inserts the granted and gives the
   * refused their references. Every statement in READ COMMITTED takes a fresh
   * snapshot, so each sees everything committed before the locks were granted
   * and every earlier round of this batch.
   */
  private async decideWithRetry(batch: NormalClaim[]): Promise<LeaseVerdict[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.decideClaims(batch, attempt > 1);
      } catch (e) {
        // 40P01: PostgreSQL aborted one of two transactions waiting for each other's rows. 23505: another
        // process gave a session this batch inserts to another user meanwhile; the batch goes again with upserts.
        const code = (e as { code?: string }).code;
        if ((code !== '40P01' && code !== '23505') || attempt >= 3) throw e;
      }
    }
  }

  private async decideClaims(batch: NormalClaim[], upsert: boolean): Promise<LeaseVerdict[]> {
    const verdicts: LeaseVerdict[] = new Array<LeaseVerdict>(batch.length);
    const client = await this.pool.connect();
    // A batch of one round goes in two round trips: BEGIN, the locks and the read together, then the writes with COMMIT.
    const chain = new StatementChain(client);
    try {
      chain.add('BEGIN');
      chain.add(`SELECT lock_lease_users(${sqlTextArray(batch.map((c) => c.key))})`);
      for (const c of batch) delete c.evictTarget; // a retried batch resolves its references again
      if (batch.some((c) => c.evictRef !== undefined)) await this.spendRefs(chain, batch);
      const rounds = planRounds(batch);
      const last = rounds.reduce((a, b) => Math.max(a, b), 0);
      for (let round = 0; round <= last; round++) {
        const indexes = last === 0 ? batch.map((_, i) => i) : rounds.flatMap((r, i) => (r === round ? [i] : []));
        const claims = last === 0 ? batch : indexes.map((i) => batch[i]!);
        const decided = await this.decideRound(chain, claims, upsert);
        indexes.forEach((batchIndex, i) => (verdicts[batchIndex] = decided[i]!));
      }
      chain.add('COMMIT');
      await chain.send();
      return verdicts;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  /**
   * Each claim's reference, if it is that claim's own (device, session, user), unexpired and
   * unused, is spent with every other reference of its refusal, and resolved to the lease it names.
   */
  private async spendRefs(chain: StatementChain, batch: NormalClaim[]): Promise<void> {
    const carrying = batch.flatMap((c, i) => (c.evictRef !== undefined ? [i] : []));
    const at = (f: (c: NormalClaim) => string | undefined) => sqlTextArray(carrying.map((i) => f(batch[i]!)));
    const { rows } = await chain.query<{ i: number; target_device_id: string; target_session_id: string }>(
      `WITH c AS (SELECT * FROM unnest(${sqlIntArray(carrying)}, ${at((c) => c.evictRef)}, ${at((c) => c.deviceId)}, ${at((c) => c.sessionId)}, ${at((c) => c.key)}, ${at((c) => c.now)}) AS c(i, ref, d, s, k, n))
       DELETE FROM eviction_refs r USING c
       WHERE r.ref = c.ref AND r.device_id = c.d AND r.session_id = c.s AND r.user_key = c.k AND r.expires_at > c.n
       RETURNING c.i, r.target_device_id, r.target_session_id`,
    );
    if (rows.length === 0) return;
    for (const r of rows) batch[r.i]!.evictTarget = { deviceId: r.target_device_id, sessionId: r.target_session_id };
    chain.add(
      `DELETE FROM eviction_refs r USING unnest(${sqlTextArray(rows.map((r) => batch[r.i]!.deviceId))}, ${sqlTextArray(rows.map((r) => batch[r.i]!.sessionId))}) AS x(d, s)
       WHERE r.device_id = x.d AND r.session_id = x.s`,
    );
  }

  /**
   * Claims of distinct users on distinct sessions (and distinct capped devices), decided set-wise:
   * the read waits in the chain behind what came before it; the round's writes wait for what comes next.
   */
  private async decideRound(chain: StatementChain, claims: NormalClaim[], upsert: boolean): Promise<LeaseVerdict[]> {
    const n = claims.length;
    const keys = new Array<string>(n);
    const nows = new Array<string>(n);
    const devices = new Array<string>(n);
    const sessions = new Array<string>(n);
    const evictDevices = new Array<string | undefined>(n);
    const evictSessions = new Array<string | undefined>(n);
    const caps = new Array<number | null>(n);
    const order = new Array<number>(n);
    let capped = false;
    for (let i = 0; i < n; i++) {
      const c = claims[i]!;
      const e = evictionOf(c);
      keys[i] = c.key;
      nows[i] = c.now;
      devices[i] = c.deviceId;
      sessions[i] = c.sessionId;
      evictDevices[i] = e?.deviceId;
      evictSessions[i] = e?.sessionId;
      caps[i] = c.maxUsersPerDevice ?? null;
      order[i] = i;
      if (c.maxUsersPerDevice !== undefined) capped = true;
    }
    // One statement: the users' dead leases and the claimed sessions' stale ones (another user's: the device
    // says the session is now this user's) and the chosen evictions are deleted, and the users' live leases read.
    // The read sees the rows as the statement began, so evicted leases come back marked and are left out below;
    // no other process can add to these users' leases while the locks are held. With a per-device cap, `crowded`
    // finds the claims for users new to a device that already holds that many others; they evict nothing.
    const { rows } = await chain.query<
      Pick<LeaseRow, 'device_id' | 'session_id' | 'hostname' | 'since'> & { kind: 'live' | 'evicted' | 'full'; i: number | null; user_key: string }
    >(
      `WITH c AS (
         SELECT * FROM unnest(${sqlTextArray(keys)}, ${sqlTextArray(nows)}, ${sqlTextArray(devices)}, ${sqlTextArray(sessions)},
           ${sqlTextArray(evictDevices)}, ${sqlTextArray(evictSessions)}, ${sqlIntArray(caps)}, ${sqlIntArray(order)}) AS c(k, n, d, s, ed, es, m, i)
       )${
         capped
           ? `, crowded AS (
         SELECT c.i FROM c LEFT JOIN leases l ON l.device_id = c.d AND l.expires_at > c.n AND l.user_key <> c.k AND l.session_id <> c.s
         WHERE c.m IS NOT NULL AND NOT EXISTS (SELECT 1 FROM leases h WHERE h.device_id = c.d AND h.user_key = c.k AND h.expires_at > c.n)
         GROUP BY c.i, c.m HAVING COUNT(DISTINCT l.user_key) >= c.m
       )`
           : ''
       }, dead AS (
         DELETE FROM leases l USING c WHERE l.user_key = c.k AND l.expires_at <= c.n
       ), stale AS (
         DELETE FROM leases l USING c WHERE l.device_id = c.d AND l.session_id = c.s AND l.user_key <> c.k
       ), evicted AS (
         DELETE FROM leases l USING c WHERE l.device_id = c.ed AND l.session_id = c.es AND l.user_key = c.k AND l.expires_at > c.n
         ${capped ? 'AND c.i NOT IN (SELECT i FROM crowded)' : ''}
         RETURNING l.user_key, l.device_id, l.session_id, l.hostname
       )
       SELECT 'live' AS kind, NULL::int AS i, l.user_key, l.device_id, l.session_id, l.hostname, l.since
         FROM leases l JOIN c ON l.user_key = c.k AND l.expires_at > c.n
       UNION ALL
       SELECT 'evicted', NULL, user_key, device_id, session_id, hostname, NULL FROM evicted${
         capped
           ? `
       UNION ALL
       SELECT 'full', i, NULL, NULL, NULL, NULL, NULL FROM crowded`
           : ''
       }`,
    );
    const slot = (r: { user_key: string; device_id: string; session_id: string }) => `${r.user_key}\n${r.device_id}\n${r.session_id}`;
    const gone = new Set<string>();
    const evicted = new Map<string, (typeof rows)[number]>();
    const full = new Set<number>();
    for (const r of rows) {
      if (r.kind === 'evicted') {
        gone.add(slot(r));
        evicted.set(r.user_key, r);
      } else if (r.kind === 'full') full.add(r.i!);
    }
    const byUser = new Map<string, LeaseSummary[]>();
    for (const l of rows) {
      if (l.kind !== 'live' || gone.has(slot(l))) continue;
      let list = byUser.get(l.user_key);
      if (!list) byUser.set(l.user_key, (list = []));
      list.push(summaryFromRow(l));
    }
    const verdicts = new Array<LeaseVerdict>(n);
    const renewed: NormalClaim[] = [];
    const fresh: NormalClaim[] = [];
    for (let i = 0; i < n; i++) {
      const c = claims[i]!;
      const held = byUser.get(c.key);
      // `crowded` is isDeviceFull, decided in SQL.
      if (full.has(i)) {
        verdicts[i] = { granted: false, leases: held ? otherLeases(c, held) : [], evicted: null, deviceFull: true };
        continue;
      }
      // A user new to the store holds nothing: the common case of a Monday morning, decided without lists.
      const granted = isGranted(c, held ? held.map((l) => l.deviceId) : NO_DEVICES);
      const e = evicted.get(c.key);
      verdicts[i] = {
        granted,
        leases: held ? withRefs(c, granted, otherLeases(c, held)) : [],
        evicted: e ? { deviceId: e.device_id, sessionId: e.session_id, hostname: e.hostname } : null,
        deviceFull: false,
      };
      if (!granted) continue;
      // A claim whose session already holds this user's live lease extends it; every other granted claim's
      // session holds no row now (its dead and stale rows were deleted above), so a plain insert does,
      // which costs the server a third less than an upsert for a burst of new sign-ins. Should another
      // process give one of those sessions to another user meanwhile, the insert fails on the key and the
      // batch is decided again with upserts (decideClaims).
      const own = !upsert && held !== undefined && held.some((l) => l.deviceId === c.deviceId && l.sessionId === c.sessionId);
      (own ? renewed : fresh).push(c);
    }
    if (renewed.length > 0) {
      const g = (f: (c: NormalClaim) => string) => sqlTextArray(renewed.map(f));
      chain.add(
        `UPDATE leases l SET user_name = x.n, role = x.r, hostname = x.h, expires_at = GREATEST(l.expires_at, x.e)
         FROM unnest(${g((c) => c.deviceId)}, ${g((c) => c.sessionId)}, ${g((c) => c.key)}, ${g((c) => c.user)}, ${g((c) => c.role)}, ${g((c) => c.hostname)}, ${g((c) => c.expiresAt)}) AS x(d, s, k, n, r, h, e)
         WHERE l.device_id = x.d AND l.session_id = x.s AND l.user_key = x.k`,
      );
    }
    if (fresh.length > 0) {
      const g = (f: (c: NormalClaim) => string) => sqlTextArray(fresh.map(f));
      chain.add(
        `INSERT INTO leases (device_id, session_id, user_key, user_name, role, hostname, since, expires_at)
         SELECT * FROM unnest(${g((c) => c.deviceId)}, ${g((c) => c.sessionId)}, ${g((c) => c.key)}, ${g((c) => c.user)}, ${g((c) => c.role)}, ${g((c) => c.hostname)}, ${g((c) => c.now)}, ${g((c) => c.expiresAt)})${
           upsert
             ? `
         -- The row is this user's lease (claimed again) unless another process gave the session to
         -- another user since the stale delete above: then it becomes this user's.
         ON CONFLICT (device_id, session_id) DO UPDATE
           SET user_key = EXCLUDED.user_key, user_name = EXCLUDED.user_name, role = EXCLUDED.role, hostname = EXCLUDED.hostname,
               since = CASE WHEN leases.user_key = EXCLUDED.user_key THEN leases.since ELSE EXCLUDED.since END,
               expires_at = CASE WHEN leases.user_key = EXCLUDED.user_key THEN GREATEST(leases.expires_at, EXCLUDED.expires_at) ELSE EXCLUDED.expires_at END`
             : ''
         }`,
      );
    }
    this.replaceRefs(chain, claims, verdicts);
    return verdicts;
  }

  /** The round's refusals that asked for references: each (device, session)'s earlier references give way to the new ones. */
  private replaceRefs(chain: StatementChain, claims: NormalClaim[], verdicts: LeaseVerdict[]): void {
    const refused = claims.flatMap((c, i) => (!verdicts[i]!.granted && !verdicts[i]!.deviceFull && c.refExpiresAt !== undefined ? [i] : []));
    if (refused.length === 0) return;
    const refs = refused.flatMap((i) => verdicts[i]!.leases.map((l) => ({ c: claims[i]!, l })));
    const r = (f: (x: (typeof refs)[number]) => string | undefined) => sqlTextArray(refs.map(f));
    chain.add(
      `WITH gone AS (
         DELETE FROM eviction_refs r USING unnest(${sqlTextArray(refused.map((i) => claims[i]!.deviceId))}, ${sqlTextArray(refused.map((i) => claims[i]!.sessionId))}) AS x(d, s)
         WHERE r.device_id = x.d AND r.session_id = x.s
       )
       INSERT INTO eviction_refs (ref, device_id, session_id, user_key, target_device_id, target_session_id, expires_at)
       SELECT * FROM unnest(${r((x) => x.l.ref)}, ${r((x) => x.c.deviceId)}, ${r((x) => x.c.sessionId)}, ${r((x) => x.c.key)}, ${r((x) => x.l.deviceId)}, ${r((x) => x.l.sessionId)}, ${r((x) => x.c.refExpiresAt)})`,
    );
  }

  async renewLeases(deviceId: string, sessionIds: readonly string[], now: string, leaseSeconds: number): Promise<string[]> {
    if (sessionIds.length === 0) return [];
    const at = isoTime(now);
    const { rows } = await this.pool.query<{ session_id: string }>(
      `UPDATE leases SET expires_at = GREATEST(expires_at, $1)
       WHERE device_id = $2 AND expires_at > $3 AND session_id = ANY($4::text[])
       RETURNING session_id`,
      [expiryOf(at, leaseSeconds), deviceId, at, [...new Set(sessionIds)]],
    );
    return rows.map((r) => r.session_id);
  }

  async releaseLease(deviceId: string, sessionId: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM leases WHERE device_id = $1 AND session_id = $2', [deviceId, sessionId])).rowCount ?? 0) > 0;
  }

  async liveLeases(q: LeaseQuery): Promise<LeaseRecord[]> {
    const args: string[] = [isoTime(q.now)];
    const where = ['expires_at > $1'];
    if (q.user !== undefined) {
      args.push(userKey(q.user));
      where.push(`user_key = $${args.length}`);
    }
    if (q.deviceId !== undefined) {
      args.push(q.deviceId);
      where.push(`device_id = $${args.length}`);
    }
    const { rows } = await this.pool.query<LeaseRow>(
      `SELECT ${LEASE_COLUMNS} FROM leases WHERE ${where.join(' AND ')} ORDER BY since, device_id, session_id`,
      args,
    );
    return rows.map(leaseFromRow);
  }

  async listLiveLeasePage(q: LeaseQuery & Page): Promise<{ sessions: LeaseRecord[]; next: string | null }> {
    const after = q.cursor === undefined ? undefined : decodeKeyCursor(LEASE_CURSOR, q.cursor, 3);
    if (q.cursor !== undefined && after === undefined) return { sessions: [], next: null };
    const args: Array<string | number> = [isoTime(q.now)];
    const where = ['expires_at > $1'];
    if (q.user !== undefined) {
      args.push(userKey(q.user));
      where.push(`user_key = $${args.length}`);
    }
    if (q.deviceId !== undefined) {
      args.push(q.deviceId);
      where.push(`device_id = $${args.length}`);
    }
    const key = 'since COLLATE "C", device_id COLLATE "C", session_id COLLATE "C"';
    if (after !== undefined) {
      args.push(...after);
      where.push(`(${key}) > ($${args.length - 2}, $${args.length - 1}, $${args.length})`);
    }
    args.push(q.limit + 1);
    const { rows } = await this.pool.query<LeaseRow>(
      `SELECT ${LEASE_COLUMNS} FROM leases WHERE ${where.join(' AND ')} ORDER BY ${key} LIMIT $${args.length}`,
      args,
    );
    const sessions = rows.slice(0, q.limit).map(leaseFromRow);
    const last = sessions[sessions.length - 1];
    return { sessions, next: rows.length > q.limit && last ? encodeKeyCursor(LEASE_CURSOR, [last.since, last.deviceId, last.sessionId]) : null };
  }

  async dropExpiredLeases(now: string): Promise<number> {
    const at = isoTime(now);
    await this.pool.query('DELETE FROM eviction_refs WHERE expires_at <= $1', [at]);
    return (await this.pool.query('DELETE FROM leases WHERE expires_at <= $1', [at])).rowCount ?? 0;
  }
}
