import { LEASE_LOCK_BUCKETS } from './lease-lock-buckets';

/** The first key of the two-key advisory locks that serialise one user's login claims (`lock_lease_users`). */
export const LEASE_LOCK_SPACE = 74_616_802;

/** Device secrets sealed under the collectors' shared key; see the SQLite migration of the same name. */
const SEAL_DEVICE_SECRETS = `ALTER TABLE devices ADD COLUMN secret_key_id TEXT;
   CREATE TABLE collector_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);`;

/**
 * The software list is paged and capped (issue 13). `name_key` is the name in lower case as JavaScript folds
 * it (software-row.ts; the store fills it in for older rows), the list's sort and filter key; the index counts
 * a device's listed programs without reading its removed ones; `software_full_at` marks a device whose list
 * is full, so the collector reports that once.
 */
const PAGE_AND_CAP_SOFTWARE = `ALTER TABLE software ADD COLUMN name_key TEXT;
   CREATE INDEX software_listed ON software (device_id, present);
   ALTER TABLE devices ADD COLUMN software_full_at TEXT;`;

/** Append only: a released migration is never edited, a new one is added. */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `CREATE TABLE enrollment_tokens (
     id TEXT PRIMARY KEY,
     token_hash TEXT NOT NULL UNIQUE,
     note TEXT NOT NULL,
     created_at TEXT NOT NULL,
     expires_at TEXT NOT NULL,
     revoked_at TEXT
   );
   CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     secret BYTEA NOT NULL,
     hostname TEXT NOT NULL,
     platform TEXT NOT NULL,
     agent_version TEXT NOT NULL,
     policy_revision INTEGER,
     token_id TEXT NOT NULL,
     enrolled_at TEXT NOT NULL,
     last_seen TEXT,
     revoked_at TEXT,
     last_seq BIGINT NOT NULL DEFAULT 0
   );
   CREATE TABLE events (
     ingest_id BIGSERIAL PRIMARY KEY,
     device_id TEXT NOT NULL,
     seq BIGINT NOT NULL,
     event_id TEXT NOT NULL,
     time_ms BIGINT NOT NULL,
     received_at TEXT NOT NULL,
     type TEXT NOT NULL,
     severity TEXT NOT NULL,
     user_name TEXT,
     body TEXT NOT NULL,
     UNIQUE (device_id, seq)
   );
   CREATE INDEX events_type ON events (type, ingest_id);
   CREATE INDEX events_user ON events (user_name, ingest_id);
   CREATE INDEX events_time ON events (time_ms);
   CREATE TABLE api_tokens (
     id TEXT PRIMARY KEY,
     token_hash TEXT NOT NULL UNIQUE,
     role TEXT NOT NULL,
     created_at TEXT NOT NULL,
     revoked_at TEXT
   );`,
  `ALTER TABLE devices ADD COLUMN installation_id TEXT;
   ALTER TABLE devices ADD COLUMN confirmed_at TEXT;
   CREATE UNIQUE INDEX devices_installation ON devices (installation_id);`,
  `ALTER TABLE devices ADD COLUMN connected_to TEXT;
   ALTER TABLE devices ADD COLUMN presence_at TEXT;
   ALTER TABLE devices ADD COLUMN silent_since TEXT;
   CREATE TABLE commands (
     id TEXT PRIMARY KEY,
     device_id TEXT NOT NULL,
     body TEXT NOT NULL,
     created_at TEXT NOT NULL,
     delivered_at TEXT,
     completed_at TEXT,
     ok BOOLEAN,
     error TEXT
   );
   CREATE INDEX commands_pending ON commands (device_id, delivered_at);
   CREATE SEQUENCE collector_event_seq;`,
  `CREATE TABLE permission_requests (
     id BIGSERIAL PRIMARY KEY,
     device_id TEXT NOT NULL,
     request_id TEXT NOT NULL,
     kind TEXT NOT NULL,
     subject TEXT NOT NULL,
     user_json TEXT NOT NULL,
     reason TEXT NOT NULL,
     created_at TEXT NOT NULL,
     status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'refused')),
     decided_at TEXT,
     decided_by TEXT,
     note TEXT,
     expires_at TEXT,
     scope TEXT,
     decision_delivered_at TEXT,
     UNIQUE (device_id, request_id)
   );
   CREATE INDEX permission_requests_status ON permission_requests (status, id);
   CREATE INDEX permission_requests_undelivered ON permission_requests (device_id, decision_delivered_at);`,
  // Login leases: times are ISO text in one form (isoTime), compared byte by byte (COLLATE "C").
  // lock_lease_users serialises each user's claims across collector processes; see PostgresStore.claimLease.
  `CREATE TABLE leases (
     device_id TEXT NOT NULL,
     session_id TEXT NOT NULL,
     user_key TEXT COLLATE "C" NOT NULL,
     user_name TEXT NOT NULL,
     role TEXT NOT NULL,
     hostname TEXT NOT NULL,
     since TEXT COLLATE "C" NOT NULL,
     expires_at TEXT COLLATE "C" NOT NULL,
     PRIMARY KEY (device_id, session_id)
   );
   -- No index on expires_at alone: the sweep of dead leases (once a minute) scans; every claim and renewal would pay for one.
   CREATE INDEX leases_user ON leases (user_key, expires_at);
   CREATE FUNCTION lock_lease_users(p_user_keys TEXT[]) RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
   DECLARE
     k INTEGER;
   BEGIN
     -- One lock per bucket of users (hashtext, the same in every process): a batch of thousands
     -- of users takes at most ${LEASE_LOCK_BUCKETS} entries of the server's shared lock table. Transaction-scoped,
     -- so held until commit; taken in ascending order by every collector process, so two batches
     -- wait for each other instead of deadlocking. The two-key form keeps these locks apart from
     -- the one-key migration lock.
     FOR k IN SELECT DISTINCT hashtext(u) & ${LEASE_LOCK_BUCKETS - 1} FROM unnest(p_user_keys) AS u ORDER BY 1 LOOP
       PERFORM pg_advisory_xact_lock(${LEASE_LOCK_SPACE}, k);
     END LOOP;
   END;
   $fn$;`,
  // Installed software per device (software-row.ts); see the SQLite migration of the same table.
  `CREATE TABLE software (
     device_id TEXT NOT NULL,
     program_key TEXT NOT NULL,
     source TEXT NOT NULL,
     name TEXT NOT NULL,
     version TEXT NOT NULL,
     publisher TEXT,
     present BOOLEAN NOT NULL,
     seq BIGINT NOT NULL,
     since TEXT NOT NULL,
     changed_at TEXT NOT NULL,
     PRIMARY KEY (device_id, program_key)
   );`,
  // Who may enroll and who counts; see the SQLite migration of the same number.
  `ALTER TABLE enrollment_tokens ADD COLUMN approval TEXT NOT NULL DEFAULT 'manual';
   ALTER TABLE enrollment_tokens ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 100;
   ALTER TABLE enrollment_tokens ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE enrollment_tokens ADD COLUMN per_minute INTEGER NOT NULL DEFAULT 10;
   ALTER TABLE enrollment_tokens ADD COLUMN window_start TEXT COLLATE "C";
   ALTER TABLE enrollment_tokens ADD COLUMN window_uses INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE enrollment_tokens ADD COLUMN last_used_at TEXT;
   UPDATE enrollment_tokens SET uses = (SELECT COUNT(*) FROM devices WHERE devices.token_id = enrollment_tokens.id);
   ALTER TABLE devices ADD COLUMN approval TEXT NOT NULL DEFAULT 'approved' CHECK (approval IN ('pending', 'approved', 'refused'));
   ALTER TABLE devices ADD COLUMN enrolled_from TEXT;
   ALTER TABLE devices ADD COLUMN decided_at TEXT;
   ALTER TABLE devices ADD COLUMN decided_by TEXT;
   CREATE TABLE eviction_refs (
     ref TEXT PRIMARY KEY,
     device_id TEXT NOT NULL,
     session_id TEXT NOT NULL,
     user_key TEXT COLLATE "C" NOT NULL,
     target_device_id TEXT NOT NULL,
     target_session_id TEXT NOT NULL,
     expires_at TEXT COLLATE "C" NOT NULL
   );
   CREATE INDEX eviction_refs_claim ON eviction_refs (device_id, session_id);`,
  SEAL_DEVICE_SECRETS,
  PAGE_AND_CAP_SOFTWARE,
];

/** How many migrations came before device secrets were sealed: a database at that version holds them in clear. */
export const POSTGRES_SECRET_SEALING = POSTGRES_MIGRATIONS.indexOf(SEAL_DEVICE_SECRETS);
