import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CodedError, Command, EventEnvelope, EventType, Platform, Severity } from '../../../shared/protocol';
import {
  type BatchRefusal,
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
import { decodeCursor, decodeKeyCursor, encodeCursor, encodeKeyCursor } from '../cursor';
import { LEASE_COLUMNS, LEASE_CURSOR, type LeaseRow, expiryOf, isoTime, leaseFromRow, summaryFromRow, userKey } from '../lease-row';
import { ClaimQueue, type NormalClaim, evictionOf, isDeviceFull, isGranted, otherLeases, withRefs } from '../lease-claims';
import { ENROLLMENT_WINDOW_MS, TOKEN_COLUMNS, type TokenRow, tokenFromRow } from '../token-row';
import {
  SOFTWARE_COLUMNS,
  SOFTWARE_CURSOR,
  type ProgramState,
  type SoftwareChange,
  type SoftwareRow,
  isSoftwareEvent,
  nameKey,
  planSoftware,
  softwareChange,
  softwareFromRow,
} from '../software-row';
import { PROTOCOL_LIMITS } from '../../../shared/protocol/primitives';
import { DeviceSecretBox, SECRET_KEY_SETTING, keyMismatch } from '../device-secret-box';
import { SQLITE_MIGRATIONS } from './migrations';

/** Rows per multi-row INSERT of appendBatch (576 parameters, far below SQLite's limit). */
const APPEND_ROWS = 64;

/** Every seq above `newest` and each above the one before: a batch that cannot hold a resend or a conflict. */
function risesAbove(events: readonly EventEnvelope[], newest: number): boolean {
  let after = newest;
  for (const e of events) {
    if (!(e.seq > after)) return false;
    after = e.seq;
  }
  return events.length > 0;
}

class BatchRefused extends Error {
  constructor(readonly refusal: BatchRefusal) {
    super(refusal.code);
  }
}

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

/**
 * The embedded store for one school. WAL with synchronous=FULL: a committed
 * transaction survives power loss, which is what an acknowledgement promises.
 */
export class SqliteStore implements CollectorStore {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly secrets: DeviceSecretBox;
  private readonly maxPrograms: number;

  /**
   * `secretKey`: the 32-byte key device secrets are sealed under (device-secret-box.ts), kept outside the database.
   * `maxProgramsPerDevice`: the cap on each device's software list, by default the protocol's.
   */
  constructor(path: string, options: { secretKey: Buffer; maxProgramsPerDevice?: number }) {
    this.secrets = new DeviceSecretBox(options.secretKey);
    this.maxPrograms = options.maxProgramsPerDevice ?? PROTOCOL_LIMITS.maxInstalledPrograms;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
  }

  async migrate(): Promise<void> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const applied = (this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
    SQLITE_MIGRATIONS.forEach((sql, i) => {
      const version = i + 1;
      if (version <= applied) return;
      this.db.transaction(() => {
        this.db.exec(sql);
        this.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, new Date().toISOString());
      })();
    });
    this.sealSecrets();
    this.fillNameKeys();
  }

  /** Programs stored before the list was sorted in SQL get their sort key (once; JavaScript folds case, SQLite's lower() only ASCII). */
  private fillNameKeys(): void {
    const rows = this.db.prepare('SELECT device_id, program_key, name FROM software WHERE name_key IS NULL').all() as Array<{
      device_id: string;
      program_key: string;
      name: string;
    }>;
    if (rows.length === 0) return;
    const update = this.db.prepare('UPDATE software SET name_key = ? WHERE device_id = ? AND program_key = ?');
    this.db.transaction(() => {
      for (const r of rows) update.run(nameKey(r.name), r.device_id, r.program_key);
    })();
  }

  /**
   * Refuses a database sealed under another key; seals what an older release stored in clear. The
   * clear bytes must not survive anywhere in the file: a device row is rewritten at every connection,
   * so old copies of it sit in free space. After sealing, the database is rebuilt (VACUUM, once, at
   * the first start after the upgrade) and the write-ahead log emptied.
   */
  private sealSecrets(): void {
    const keyId = this.secrets.keyId;
    const sealed = this.db.transaction((): number => {
      const held = this.db.prepare('SELECT value FROM collector_settings WHERE name = ?').get(SECRET_KEY_SETTING) as { value: string } | undefined;
      if (held === undefined) this.db.prepare('INSERT INTO collector_settings (name, value) VALUES (?, ?)').run(SECRET_KEY_SETTING, keyId);
      else if (held.value !== keyId) throw keyMismatch(held.value);
      const clear = this.db.prepare('SELECT id, secret FROM devices WHERE secret_key_id IS NULL').all() as Array<{ id: string; secret: Buffer }>;
      const update = this.db.prepare('UPDATE devices SET secret = ?, secret_key_id = ? WHERE id = ?');
      for (const d of clear) update.run(this.secrets.seal(d.id, d.secret), keyId, d.id);
      return clear.length;
    })();
    if (sealed === 0) return;
    this.db.exec('VACUUM');
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /** A row's secret: sealed (under this database's one key), or in clear if an older release wrote it since this store opened. */
  private secretOf(deviceId: string, row: { secret: Buffer; secret_key_id: string | null }): Buffer {
    if (row.secret_key_id === null) return row.secret;
    if (row.secret_key_id !== this.secrets.keyId) throw keyMismatch(row.secret_key_id);
    return this.secrets.open(deviceId, row.secret);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async createEnrollmentToken(t: NewEnrollmentToken): Promise<void> {
    this.db
      .prepare('INSERT INTO enrollment_tokens (id, token_hash, note, created_at, expires_at, approval, max_uses, per_minute) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(t.id, t.tokenHash, t.note, t.createdAt, t.expiresAt, t.approval, t.maxUses, t.perMinute);
  }

  async findUsableEnrollmentToken(tokenHash: string, now: string): Promise<UsableEnrollmentToken | undefined> {
    const row = this.statement('SELECT id, approval, uses, max_uses FROM enrollment_tokens WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?').get(
      tokenHash,
      now,
    ) as { id: string; approval: UsableEnrollmentToken['approval']; uses: number; max_uses: number } | undefined;
    return row && { id: row.id, approval: row.approval, uses: row.uses, maxUses: row.max_uses };
  }

  async useEnrollmentToken(id: string, now: string): Promise<'used' | 'used-up' | 'rate-limited'> {
    const cutoff = new Date(Date.parse(now) - ENROLLMENT_WINDOW_MS).toISOString();
    // One statement: of enrollments racing for the last use, exactly one wins. SET sees the row as it was.
    const changed = this.statement(
      `UPDATE enrollment_tokens SET uses = uses + 1,
         window_uses = CASE WHEN window_start > ? THEN window_uses + 1 ELSE 1 END,
         window_start = CASE WHEN window_start > ? THEN window_start ELSE ? END,
         last_used_at = ?
       WHERE id = ? AND revoked_at IS NULL AND uses < max_uses AND (window_start IS NULL OR window_start <= ? OR window_uses < per_minute)`,
    ).run(cutoff, cutoff, now, now, id, cutoff).changes;
    if (changed > 0) return 'used';
    const row = this.statement('SELECT uses, max_uses, revoked_at FROM enrollment_tokens WHERE id = ?').get(id) as
      { uses: number; max_uses: number; revoked_at: string | null } | undefined;
    return !row || row.revoked_at !== null || row.uses >= row.max_uses ? 'used-up' : 'rate-limited';
  }

  async revokeEnrollmentToken(id: string, now: string): Promise<boolean> {
    return this.statement('UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id).changes > 0;
  }

  async listEnrollmentTokens(): Promise<EnrollmentTokenRecord[]> {
    const rows = this.statement(`SELECT ${TOKEN_COLUMNS} FROM enrollment_tokens ORDER BY created_at, id`).all() as TokenRow[];
    return rows.map(tokenFromRow);
  }

  async enrollDevice(d: NewDevice): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO devices (id, installation_id, secret, secret_key_id, hostname, platform, agent_version, token_id, enrolled_at, last_seen, approval, enrolled_from)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        d.id,
        d.installationId,
        this.secrets.seal(d.id, d.secret),
        this.secrets.keyId,
        d.hostname,
        d.platform,
        d.agentVersion,
        d.tokenId,
        d.now,
        d.now,
        d.approval,
        d.enrolledFrom,
      );
  }

  async deviceByInstallation(installationId: string): Promise<InstallationRecord | undefined> {
    const row = this.statement('SELECT id, secret, secret_key_id, confirmed_at, revoked_at, approval FROM devices WHERE installation_id = ?').get(
      installationId,
    ) as
      | { id: string; secret: Buffer; secret_key_id: string | null; confirmed_at: string | null; revoked_at: string | null; approval: DeviceApproval }
      | undefined;
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
    const row = this.statement('SELECT secret, secret_key_id, revoked_at, last_seq, approval FROM devices WHERE id = ?').get(deviceId) as
      { secret: Buffer; secret_key_id: string | null; revoked_at: string | null; last_seq: number; approval: DeviceApproval } | undefined;
    return row && { secret: this.secretOf(deviceId, row), revoked: row.revoked_at !== null, lastSeq: row.last_seq, approval: row.approval };
  }

  async decideDevice(deviceId: string, decision: 'approved' | 'refused', now: string, by: string): Promise<boolean> {
    const sql =
      decision === 'approved'
        ? "UPDATE devices SET approval = 'approved', decided_at = ?, decided_by = ? WHERE id = ? AND approval = 'pending' AND revoked_at IS NULL"
        : "UPDATE devices SET approval = 'refused', decided_at = ?, decided_by = ?, revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND approval = 'pending'";
    const args = decision === 'approved' ? [now, by, deviceId] : [now, by, now, deviceId];
    return this.statement(sql).run(...args).changes > 0;
  }

  async revokeDevice(deviceId: string, now: string): Promise<boolean> {
    return this.statement('UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, deviceId).changes > 0;
  }

  async deviceConnected(deviceId: string, c: DeviceConnection): Promise<void> {
    this.connectedStatement(deviceId, c);
  }

  private connectedStatement(deviceId: string, c: DeviceConnection): void {
    this.statement(
      `UPDATE devices SET hostname = ?, agent_version = ?, policy_revision = ?, last_seen = ?, silent_since = NULL, connected_to = ?, presence_at = ?,
         confirmed_at = CASE WHEN ? AND confirmed_at IS NULL THEN ? ELSE confirmed_at END
       WHERE id = ?`,
    ).run(c.hostname, c.agentVersion, c.policyRevision, c.now, c.instance, c.now, c.confirmed ? 1 : 0, c.now, deviceId);
  }

  async listDevices(): Promise<DeviceRecord[]> {
    const rows = this.db.prepare(`SELECT ${DEVICE_COLUMNS} FROM devices ORDER BY hostname, id`).all() as DeviceRow[];
    return rows.map(deviceFromRow);
  }

  async listDevicePage(query: DevicePageQuery): Promise<{ devices: DeviceRecord[]; next: string | null }> {
    const after = query.cursor === undefined ? undefined : decodeKeyCursor('device', query.cursor, 1)?.[0];
    if (query.cursor !== undefined && after === undefined) return { devices: [], next: null };
    // The filter is part of the page query, so a page holds `limit` matching devices, not `limit` devices filtered.
    const where: string[] = [];
    const args: unknown[] = [];
    if (query.approval !== undefined) {
      where.push('approval = ?');
      args.push(query.approval);
    }
    if (after !== undefined) {
      where.push('(hostname, id) > (SELECT hostname, id FROM devices WHERE id = ?)');
      args.push(after);
    }
    const rows = this.statement(
      `SELECT ${DEVICE_COLUMNS} FROM devices ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY hostname, id LIMIT ?`,
    ).all(...args, query.limit + 1) as DeviceRow[];
    const devices = rows.slice(0, query.limit).map(deviceFromRow);
    return { devices, next: rows.length > query.limit ? encodeKeyCursor('device', [devices[devices.length - 1]!.id]) : null };
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** Prepared once, reused: preparing on every call costs more than the insert. */
  private statement(sql: string): Database.Statement {
    let prepared = this.statements.get(sql);
    if (!prepared) {
      prepared = this.db.prepare(sql);
      this.statements.set(sql, prepared);
    }
    return prepared;
  }

  private readonly insertEvent = () =>
    this.statement(
      'INSERT OR IGNORE INTO events (device_id, seq, event_id, time_ms, received_at, type, severity, user_name, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );

  /**
   * `rows` new events in one plain INSERT (no OR IGNORE: appendBatch only runs where nothing can
   * conflict, and were that ever wrong the statement fails and the transaction with it, rather than
   * an event being dropped).
   */
  private appendEvents(rows: number): Database.Statement {
    return (this.appendStatements[rows] ??= this.db.prepare(
      `INSERT INTO events (device_id, seq, event_id, time_ms, received_at, type, severity, user_name, body) VALUES ${Array(rows).fill('(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
    ));
  }

  /** By row count; kept apart from `statements` so the hot path never hashes a long SQL text. */
  private readonly appendStatements: Database.Statement[] = [];

  /**
   * The usual batch: every seq above the device's highest stored one, rising. None can be a resend
   * or a conflict, so it needs neither the per-event check for one nor the savepoint that undoes a
   * refused batch (issue 12 item 8: the store was two fifths of the collector's time per event). It
   * goes in as multi-row INSERTs of APPEND_ROWS rows each, then one for the rest.
   */
  private appendBatch(
    deviceId: string,
    events: readonly EventEnvelope[],
    receivedAt: string,
  ): { inserted: number; maxSeq: number; softwareRefused: InsertResult['softwareRefused'] } {
    const changes: SoftwareChange[] = [];
    for (let from = 0; from < events.length; from += APPEND_ROWS) {
      const rows = Math.min(APPEND_ROWS, events.length - from);
      const params: unknown[] = new Array(rows * 9);
      for (let i = 0, p = 0; i < rows; i++) {
        const e = events[from + i]!;
        params[p++] = deviceId;
        params[p++] = e.seq;
        params[p++] = e.id;
        params[p++] = Date.parse(e.time);
        params[p++] = receivedAt;
        params[p++] = e.type;
        params[p++] = e.severity;
        params[p++] = e.user?.name ?? null;
        params[p++] = JSON.stringify(e);
        if (isSoftwareEvent(e.type)) changes.push(softwareChange(e)!);
      }
      this.appendEvents(rows).run(params);
    }
    const maxSeq = events[events.length - 1]!.seq;
    const softwareRefused = changes.length > 0 ? this.applySoftware(deviceId, changes, receivedAt) : undefined;
    this.statement('UPDATE devices SET last_seq = MAX(last_seq, ?), last_seen = ?, silent_since = NULL WHERE id = ?').run(maxSeq, receivedAt, deviceId);
    return { inserted: events.length, maxSeq, softwareRefused };
  }

  async insertEvents(deviceId: string, events: readonly EventEnvelope[], receivedAt: string): Promise<InsertResult> {
    return (await this.insertEventBatches([{ deviceId, events }], receivedAt))[0]!;
  }

  async insertEventBatches(
    batches: ReadonlyArray<{ deviceId: string; events: readonly EventEnvelope[] }>,
    receivedAt: string,
    connections: ReadonlyArray<{ deviceId: string; connection: DeviceConnection }> = [],
  ): Promise<InsertResult[]> {
    const insert = this.insertEvent();
    const storedId = this.statement('SELECT event_id FROM events WHERE device_id = ? AND seq = ?');
    const readDevice = this.statement('SELECT last_seq, revoked_at FROM devices WHERE id = ?');
    const bump = this.statement('UPDATE devices SET last_seq = MAX(last_seq, ?), last_seen = ?, silent_since = NULL WHERE id = ?');
    // Read from the events themselves, not the device's last_seq: a batch for a device with no row counts too.
    const newestStored = this.statement('SELECT MAX(seq) AS s FROM events WHERE device_id = ?');
    // Any other batch: a savepoint each, so a refused batch leaves nothing behind and the others in the transaction are kept.
    const storeBatch = this.db.transaction(
      (deviceId: string, events: readonly EventEnvelope[]): { inserted: number; maxSeq: number; softwareRefused: InsertResult['softwareRefused'] } => {
        let inserted = 0;
        let maxSeq = 0;
        const changes: SoftwareChange[] = [];
        for (const e of events) {
          const stored = insert.run(deviceId, e.seq, e.id, Date.parse(e.time), receivedAt, e.type, e.severity, e.user?.name ?? null, JSON.stringify(e)).changes;
          // Not stored: a resend if the seq holds this very event, else another event under a stored seq.
          if (stored === 0 && (storedId.get(deviceId, e.seq) as { event_id: string } | undefined)?.event_id !== e.id)
            throw new BatchRefused({ code: 'INV_ERR_SEQ_CONFLICT', seq: e.seq });
          inserted += stored;
          // Only an event stored just now changes the software list: a resend is a no-op here as in events.
          if (stored > 0 && isSoftwareEvent(e.type)) changes.push(softwareChange(e)!);
          if (e.seq > maxSeq) maxSeq = e.seq;
        }
        const softwareRefused = changes.length > 0 ? this.applySoftware(deviceId, changes, receivedAt) : undefined;
        bump.run(maxSeq, receivedAt, deviceId);
        return { inserted, maxSeq, softwareRefused };
      },
    );
    return this.db.transaction((): InsertResult[] => {
      for (const { deviceId, connection } of connections) this.connectedStatement(deviceId, connection);
      return batches.map(({ deviceId, events }): InsertResult => {
        // One writer at a time: a revocation committed before this transaction is seen here.
        const device = readDevice.get(deviceId) as { last_seq: number; revoked_at: string | null } | undefined;
        const lastSeq = device?.last_seq ?? 0;
        if (device && device.revoked_at !== null) return { inserted: 0, lastSeq, refused: { code: 'INV_ERR_DEVICE_REVOKED' } };
        try {
          const newest = (newestStored.get(deviceId) as { s: number | null }).s ?? 0;
          const { inserted, maxSeq, softwareRefused } = risesAbove(events, newest)
            ? this.appendBatch(deviceId, events, receivedAt)
            : storeBatch(deviceId, events);
          return { inserted, lastSeq: Math.max(lastSeq, maxSeq), ...(softwareRefused ? { softwareRefused } : {}) };
        } catch (e) {
          if (e instanceof BatchRefused) return { inserted: 0, lastSeq, refused: e.refusal };
          throw e;
        }
      });
    })();
  }

  async queryEvents(q: EventQuery): Promise<{ events: StoredEvent[]; next: string | null }> {
    const where: string[] = [];
    const args: Array<string | number> = [];
    const add = (sql: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(sql);
      args.push(value);
    };
    add('device_id = ?', q.device);
    add('type = ?', q.type);
    add('user_name = ?', q.user);
    add('severity = ?', q.severity);
    add('time_ms >= ?', q.since === undefined ? undefined : Date.parse(q.since));
    add('time_ms < ?', q.until === undefined ? undefined : Date.parse(q.until));
    add('ingest_id > ?', q.cursor === undefined ? undefined : decodeCursor(q.cursor));
    const sql = `SELECT ingest_id, received_at, body FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ingest_id LIMIT ?`;
    const rows = this.statement(sql).all(...args, q.limit + 1) as Array<{ ingest_id: number; received_at: string; body: string }>;
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      events: page.map((r) => ({ ...(JSON.parse(r.body) as Record<string, unknown>), receivedAt: r.received_at })),
      next: rows.length > q.limit && last ? encodeCursor(last.ingest_id) : null,
    };
  }

  /**
   * Inside the ingest transaction: a batch's stored software changes, planned against what the device's
   * list holds (planSoftware: in sequence order, each over an earlier event only, no new program past the
   * cap), then applied. Returns what was refused, if anything.
   */
  private applySoftware(deviceId: string, changes: readonly SoftwareChange[], receivedAt: string): InsertResult['softwareRefused'] {
    const held = new Map(
      (
        this.statement('SELECT program_key, present, seq FROM software WHERE device_id = ? AND program_key IN (SELECT value FROM json_each(?))').all(
          deviceId,
          JSON.stringify([...new Set(changes.map((c) => c.key))]),
        ) as Array<{ program_key: string; present: number; seq: number }>
      ).map((r): [string, ProgramState] => [r.program_key, { present: r.present === 1, seq: r.seq }]),
    );
    const listed = (this.statement('SELECT COUNT(*) AS n FROM software WHERE device_id = ? AND present = 1').get(deviceId) as { n: number }).n;
    const plan = planSoftware(changes, held, listed, this.maxPrograms);
    const upsert = this.statement(
      `INSERT INTO software (device_id, program_key, source, name, name_key, version, publisher, present, seq, since, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (device_id, program_key) DO UPDATE SET
         publisher = CASE WHEN excluded.present = 1 THEN excluded.publisher ELSE software.publisher END,
         since = CASE WHEN excluded.present = 1 AND software.present = 1 THEN software.since ELSE excluded.since END,
         present = excluded.present, seq = excluded.seq, changed_at = excluded.changed_at, name_key = excluded.name_key
       WHERE excluded.seq > software.seq`,
    );
    for (const c of plan.apply) upsert.run(deviceId, c.key, c.source, c.name, c.nameKey, c.version, c.publisher, c.present ? 1 : 0, c.seq, c.time, receivedAt);
    if (plan.refused > 0) {
      const newlyFull =
        this.statement('UPDATE devices SET software_full_at = ? WHERE id = ? AND software_full_at IS NULL').run(receivedAt, deviceId).changes > 0;
      return { programs: plan.refused, newlyFull, cap: this.maxPrograms };
    }
    if (plan.present < this.maxPrograms)
      this.statement('UPDATE devices SET software_full_at = NULL WHERE id = ? AND software_full_at IS NOT NULL').run(deviceId);
    return undefined;
  }

  async listSoftware(deviceId: string, query: SoftwareQuery): Promise<{ software: SoftwareRecord[]; next: string | null }> {
    const after = query.cursor === undefined ? undefined : decodeKeyCursor(SOFTWARE_CURSOR, query.cursor, 1)?.[0];
    if (query.cursor !== undefined && after === undefined) return { software: [], next: null };
    const where = ['device_id = ?', 'present = 1'];
    const args: Array<string | number> = [deviceId];
    if (query.q !== undefined) {
      where.push('instr(name_key, ?) > 0');
      args.push(nameKey(query.q));
    }
    if (after !== undefined) {
      where.push('(name_key, name, version, source) > (SELECT name_key, name, version, source FROM software WHERE device_id = ? AND program_key = ?)');
      args.push(deviceId, after);
    }
    const rows = this.statement(`SELECT ${SOFTWARE_COLUMNS} FROM software WHERE ${where.join(' AND ')} ORDER BY name_key, name, version, source LIMIT ?`).all(
      ...args,
      query.limit + 1,
    ) as SoftwareRow[];
    const page = rows.slice(0, query.limit);
    return {
      software: page.map(softwareFromRow),
      next: rows.length > query.limit ? encodeKeyCursor(SOFTWARE_CURSOR, [page[page.length - 1]!.program_key]) : null,
    };
  }

  async countEvents(): Promise<number> {
    return (this.statement('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  }

  async clearDevicePresence(deviceId: string, instance: string): Promise<void> {
    this.statement('UPDATE devices SET connected_to = NULL WHERE id = ? AND connected_to = ?').run(deviceId, instance);
  }

  async refreshPresence(instance: string, now: string): Promise<string[]> {
    this.statement('UPDATE devices SET presence_at = ?, last_seen = ?, silent_since = NULL WHERE connected_to = ?').run(now, now, instance);
    const revoked = this.statement('SELECT id FROM devices WHERE connected_to = ? AND revoked_at IS NOT NULL').all(instance) as Array<{ id: string }>;
    return revoked.map((r) => r.id);
  }

  async clearPresence(instance: string): Promise<void> {
    this.statement('UPDATE devices SET connected_to = NULL WHERE connected_to = ?').run(instance);
  }

  async createCommand(c: { id: string; deviceId: string; command: Command; createdAt: string }): Promise<void> {
    this.insertCommand(c);
  }

  private insertCommand(c: NewCommand): void {
    this.statement('INSERT INTO commands (id, device_id, body, created_at) VALUES (?, ?, ?, ?)').run(c.id, c.deviceId, JSON.stringify(c.command), c.createdAt);
  }

  async undeliveredCommands(deviceId: string): Promise<CommandRecord[]> {
    const rows = this.statement('SELECT * FROM commands WHERE device_id = ? AND delivered_at IS NULL ORDER BY created_at, id').all(deviceId) as CommandRow[];
    return rows.map(commandFromRow);
  }

  async markCommandDelivered(id: string, now: string): Promise<void> {
    this.statement('UPDATE commands SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL').run(now, id);
  }

  async undoCommandDelivery(id: string): Promise<void> {
    this.statement('UPDATE commands SET delivered_at = NULL WHERE id = ? AND completed_at IS NULL').run(id);
  }

  async completeCommand(id: string, r: { ok: boolean; error: CodedError | null; now: string }): Promise<boolean> {
    const result = this.db
      .prepare('UPDATE commands SET completed_at = ?, ok = ?, error = ?, delivered_at = COALESCE(delivered_at, ?) WHERE id = ? AND completed_at IS NULL')
      .run(r.now, r.ok ? 1 : 0, r.error ? JSON.stringify(r.error) : null, r.now, id);
    return result.changes > 0;
  }

  async getCommand(id: string): Promise<CommandRecord | undefined> {
    const row = this.statement('SELECT * FROM commands WHERE id = ?').get(id) as CommandRow | undefined;
    return row && commandFromRow(row);
  }

  async claimNewlySilent(cutoff: string, now: string): Promise<Array<{ id: string; hostname: string; lastSeen: string }>> {
    const rows = this.db
      .prepare('UPDATE devices SET silent_since = ? WHERE silent_since IS NULL AND revoked_at IS NULL AND last_seen < ? RETURNING id, hostname, last_seen')
      .all(now, cutoff) as Array<{ id: string; hostname: string; last_seen: string }>;
    return rows.map((r) => ({ id: r.id, hostname: r.hostname, lastSeen: r.last_seen }));
  }

  async insertCollectorEvent(e: { id: string; time: string; type: EventType; severity: Severity; data: unknown }, receivedAt: string): Promise<EventEnvelope> {
    return this.db.transaction(() => {
      const seq = ((this.statement('SELECT MAX(seq) AS s FROM events WHERE device_id = ?').get(COLLECTOR_DEVICE_ID) as { s: number | null }).s ?? 0) + 1;
      const envelope = { ...e, deviceId: COLLECTOR_DEVICE_ID, seq } as EventEnvelope;
      this.insertEvent().run(COLLECTOR_DEVICE_ID, seq, e.id, Date.parse(e.time), receivedAt, e.type, e.severity, null, JSON.stringify(envelope));
      return envelope;
    })();
  }

  async createApiToken(t: { id: string; tokenHash: string; role: 'admin' | 'readonly'; createdAt: string }): Promise<void> {
    this.statement('INSERT INTO api_tokens (id, token_hash, role, created_at) VALUES (?, ?, ?, ?)').run(t.id, t.tokenHash, t.role, t.createdAt);
  }

  async apiTokenRole(tokenHash: string): Promise<'admin' | 'readonly' | undefined> {
    const row = this.statement('SELECT role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL').get(tokenHash) as
      { role: 'admin' | 'readonly' } | undefined;
    return row?.role;
  }

  async hasApiToken(role: 'admin' | 'readonly'): Promise<boolean> {
    return this.statement('SELECT 1 FROM api_tokens WHERE role = ? AND revoked_at IS NULL LIMIT 1').get(role) !== undefined;
  }

  async apiToken(tokenHash: string): Promise<{ id: string; role: 'admin' | 'readonly' } | undefined> {
    return this.statement('SELECT id, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL').get(tokenHash) as
      { id: string; role: 'admin' | 'readonly' } | undefined;
  }

  async createPermissionRequest(r: NewPermissionRequest): Promise<{ created: boolean; record: PermissionRequestRecord }> {
    return this.db.transaction(() => {
      const created =
        this.statement(
          `INSERT INTO permission_requests (device_id, request_id, kind, subject, user_json, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (device_id, request_id) DO NOTHING`,
        ).run(r.deviceId, r.requestId, r.kind, JSON.stringify(r.subject), JSON.stringify(r.user), r.reason, r.createdAt).changes > 0;
      return { created, record: this.permissionRow(r.deviceId, r.requestId)! };
    })();
  }

  private permissionRow(deviceId: string, requestId: string): PermissionRequestRecord | undefined {
    const row = this.statement(`SELECT ${PERMISSION_COLUMNS} FROM permission_requests WHERE device_id = ? AND request_id = ?`).get(deviceId, requestId) as
      PermissionRow | undefined;
    return row && permissionFromRow(row);
  }

  async getPermissionRequest(deviceId: string, requestId: string): Promise<PermissionRequestRecord | undefined> {
    return this.permissionRow(deviceId, requestId);
  }

  async listPermissionRequests(q: PermissionRequestQuery): Promise<{ requests: PermissionRequestRecord[]; next: string | null }> {
    const where: string[] = [];
    const args: Array<string | number> = [];
    const add = (sql: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(sql);
      args.push(value);
    };
    add('status = ?', q.status);
    add('device_id = ?', q.device);
    add('id < ?', q.cursor === undefined ? undefined : decodeCursor(q.cursor));
    const sql = `SELECT ${PERMISSION_COLUMNS} FROM permission_requests ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.statement(sql).all(...args, q.limit + 1) as PermissionRow[];
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return { requests: page.map(permissionFromRow), next: rows.length > q.limit && last ? encodeCursor(last.id) : null };
  }

  async decidePermissionRequest(deviceId: string, requestId: string, d: PermissionDecision, commands: readonly NewCommand[]): Promise<PermissionRequestRecord> {
    return this.db.transaction(() => {
      const changed = this.statement(
        `UPDATE permission_requests SET status = ?, decided_at = ?, decided_by = ?, note = ?, expires_at = ?, scope = ?
         WHERE device_id = ? AND request_id = ? AND status = 'pending'`,
      ).run(d.decision, d.decidedAt, d.decidedBy, d.note, d.expiresAt, d.scope, deviceId, requestId).changes;
      const record = this.permissionRow(deviceId, requestId);
      if (!record) throw new InvigilatorError('INV_ERR_PERMISSION_NOT_FOUND', `${deviceId}/${requestId}`);
      if (changed === 0) throw new InvigilatorError('INV_ERR_PERMISSION_DECIDED', `${deviceId}/${requestId} was ${record.status}`);
      for (const c of commands) this.insertCommand(c);
      return record;
    })();
  }

  async undeliveredDecisions(deviceId: string): Promise<PermissionRequestRecord[]> {
    const rows = this.statement(
      `SELECT ${PERMISSION_COLUMNS} FROM permission_requests WHERE device_id = ? AND decision_delivered_at IS NULL AND status <> 'pending' ORDER BY decided_at, id`,
    ).all(deviceId) as PermissionRow[];
    return rows.map(permissionFromRow);
  }

  async claimDecisionDelivery(deviceId: string, requestId: string, now: string): Promise<boolean> {
    return (
      this.statement(
        `UPDATE permission_requests SET decision_delivered_at = ? WHERE device_id = ? AND request_id = ? AND status <> 'pending' AND decision_delivered_at IS NULL`,
      ).run(now, deviceId, requestId).changes > 0
    );
  }

  async undoDecisionDelivery(deviceId: string, requestId: string): Promise<void> {
    this.statement('UPDATE permission_requests SET decision_delivered_at = NULL WHERE device_id = ? AND request_id = ?').run(deviceId, requestId);
  }

  /**
   * Group commit, as for events: claims arriving together are decided one
   * after another, in arrival order, inside one transaction (one fsync for
   * all of them). One process owns the database and better-sqlite3 runs a
   * transaction to its end without yielding, so each decision is atomic.
   */
  private readonly claims = new ClaimQueue((batch) => this.db.transaction(() => batch.map((c) => this.decideClaim(c)))());

  async claimLease(claim: LeaseClaim): Promise<LeaseVerdict> {
    return this.claims.submit(claim);
  }

  /** One claim, inside the batch's transaction: the same steps, in the same order, as PostgresStore.decideRound. */
  private decideClaim(c: NormalClaim): LeaseVerdict {
    const held = this.statement('SELECT device_id, session_id, hostname, since, expires_at FROM leases WHERE user_key = ?').all(c.key) as Array<
      Pick<LeaseRow, 'device_id' | 'session_id' | 'hostname' | 'since' | 'expires_at'>
    >;
    if (held.some((l) => l.expires_at <= c.now)) this.statement('DELETE FROM leases WHERE user_key = ? AND expires_at <= ?').run(c.key, c.now);
    let live = held.filter((l) => l.expires_at > c.now).map(summaryFromRow);
    if (c.evictRef !== undefined) this.spendRef(c);
    if (c.maxUsersPerDevice !== undefined) {
      const others = this.statement(
        'SELECT COUNT(DISTINCT user_key) AS n FROM leases WHERE device_id = ? AND expires_at > ? AND user_key <> ? AND session_id <> ?',
      ).get(c.deviceId, c.now, c.key, c.sessionId) as { n: number };
      const full = isDeviceFull(
        c,
        others.n,
        live.some((l) => l.deviceId === c.deviceId),
      );
      if (full) {
        this.statement('DELETE FROM leases WHERE device_id = ? AND session_id = ? AND user_key <> ?').run(c.deviceId, c.sessionId, c.key);
        return { granted: false, leases: otherLeases(c, live), evicted: null, deviceFull: true };
      }
    }
    const evict = evictionOf(c);
    const target = evict && live.find((l) => l.deviceId === evict.deviceId && l.sessionId === evict.sessionId);
    if (target) {
      this.statement('DELETE FROM leases WHERE device_id = ? AND session_id = ?').run(target.deviceId, target.sessionId);
      live = live.filter((l) => l !== target);
    }
    const granted = isGranted(
      c,
      live.map((l) => l.deviceId),
    );
    // The device says this session is now this user's: another user's lease on it is stale. A granted
    // claim takes the row over; a refused one deletes it.
    if (granted) {
      this.statement(
        `INSERT INTO leases (device_id, session_id, user_key, user_name, role, hostname, since, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id, session_id) DO UPDATE
           SET user_key = excluded.user_key, user_name = excluded.user_name, role = excluded.role, hostname = excluded.hostname,
               since = CASE WHEN leases.user_key = excluded.user_key THEN leases.since ELSE excluded.since END,
               expires_at = CASE WHEN leases.user_key = excluded.user_key THEN MAX(leases.expires_at, excluded.expires_at) ELSE excluded.expires_at END`,
      ).run(c.deviceId, c.sessionId, c.key, c.user, c.role, c.hostname, c.now, c.expiresAt);
    } else {
      this.statement('DELETE FROM leases WHERE device_id = ? AND session_id = ? AND user_key <> ?').run(c.deviceId, c.sessionId, c.key);
    }
    const leases = withRefs(c, granted, otherLeases(c, live));
    if (!granted && c.refExpiresAt !== undefined) this.replaceRefs(c, leases);
    return {
      granted,
      leases,
      evicted: target ? { deviceId: target.deviceId, sessionId: target.sessionId, hostname: target.hostname } : null,
      deviceFull: false,
    };
  }

  /** The claim's reference, if it is this claim's own, unexpired and unused: spent, with every other of its refusal, and resolved. */
  private spendRef(c: NormalClaim): void {
    const row = this.statement(
      `DELETE FROM eviction_refs WHERE ref = ? AND device_id = ? AND session_id = ? AND user_key = ? AND expires_at > ?
       RETURNING target_device_id, target_session_id`,
    ).get(c.evictRef, c.deviceId, c.sessionId, c.key, c.now) as { target_device_id: string; target_session_id: string } | undefined;
    if (!row) return;
    this.statement('DELETE FROM eviction_refs WHERE device_id = ? AND session_id = ?').run(c.deviceId, c.sessionId);
    c.evictTarget = { deviceId: row.target_device_id, sessionId: row.target_session_id };
  }

  /** A refusal's references replace any the same (device, session) was given before. */
  private replaceRefs(c: NormalClaim, leases: readonly LeaseSummary[]): void {
    this.statement('DELETE FROM eviction_refs WHERE device_id = ? AND session_id = ?').run(c.deviceId, c.sessionId);
    const insert = this.statement(
      'INSERT INTO eviction_refs (ref, device_id, session_id, user_key, target_device_id, target_session_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    for (const l of leases) insert.run(l.ref, c.deviceId, c.sessionId, c.key, l.deviceId, l.sessionId, c.refExpiresAt);
  }

  async renewLeases(deviceId: string, sessionIds: readonly string[], now: string, leaseSeconds: number): Promise<string[]> {
    if (sessionIds.length === 0) return [];
    const at = isoTime(now);
    const rows = this.statement(
      `UPDATE leases SET expires_at = MAX(expires_at, ?)
       WHERE device_id = ? AND expires_at > ? AND session_id IN (SELECT value FROM json_each(?))
       RETURNING session_id`,
    ).all(expiryOf(at, leaseSeconds), deviceId, at, JSON.stringify([...new Set(sessionIds)])) as Array<{ session_id: string }>;
    return rows.map((r) => r.session_id);
  }

  async releaseLease(deviceId: string, sessionId: string): Promise<boolean> {
    return this.statement('DELETE FROM leases WHERE device_id = ? AND session_id = ?').run(deviceId, sessionId).changes > 0;
  }

  async liveLeases(q: LeaseQuery): Promise<LeaseRecord[]> {
    const where = ['expires_at > ?'];
    const args: string[] = [isoTime(q.now)];
    if (q.user !== undefined) {
      where.push('user_key = ?');
      args.push(userKey(q.user));
    }
    if (q.deviceId !== undefined) {
      where.push('device_id = ?');
      args.push(q.deviceId);
    }
    const rows = this.statement(`SELECT ${LEASE_COLUMNS} FROM leases WHERE ${where.join(' AND ')} ORDER BY since, device_id, session_id`).all(
      ...args,
    ) as LeaseRow[];
    return rows.map(leaseFromRow);
  }

  async listLiveLeasePage(q: LeaseQuery & Page): Promise<{ sessions: LeaseRecord[]; next: string | null }> {
    const after = q.cursor === undefined ? undefined : decodeKeyCursor(LEASE_CURSOR, q.cursor, 3);
    if (q.cursor !== undefined && after === undefined) return { sessions: [], next: null };
    const where = ['expires_at > ?'];
    const args: Array<string | number> = [isoTime(q.now)];
    if (q.user !== undefined) {
      where.push('user_key = ?');
      args.push(userKey(q.user));
    }
    if (q.deviceId !== undefined) {
      where.push('device_id = ?');
      args.push(q.deviceId);
    }
    if (after !== undefined) {
      where.push('(since, device_id, session_id) > (?, ?, ?)');
      args.push(...after);
    }
    const rows = this.statement(`SELECT ${LEASE_COLUMNS} FROM leases WHERE ${where.join(' AND ')} ORDER BY since, device_id, session_id LIMIT ?`).all(
      ...args,
      q.limit + 1,
    ) as LeaseRow[];
    const sessions = rows.slice(0, q.limit).map(leaseFromRow);
    const last = sessions[sessions.length - 1];
    return { sessions, next: rows.length > q.limit && last ? encodeKeyCursor(LEASE_CURSOR, [last.since, last.deviceId, last.sessionId]) : null };
  }

  async dropExpiredLeases(now: string): Promise<number> {
    const at = isoTime(now);
    this.statement('DELETE FROM eviction_refs WHERE expires_at <= ?').run(at);
    return this.statement('DELETE FROM leases WHERE expires_at <= ?').run(at).changes;
  }
}
