/**
 * Device secrets sealed under the collector's key (device-secret-box.ts). `secret_key_id` names the key a
 * row's secret is sealed under; NULL is a secret an older release stored in clear, sealed by the store the
 * first time it opens the database (SqliteStore.sealSecrets). collector_settings holds, among others, the
 * id of the one key this database's secrets are sealed under.
 */
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
export const SQLITE_MIGRATIONS: readonly string[] = [
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
     secret BLOB NOT NULL,
     hostname TEXT NOT NULL,
     platform TEXT NOT NULL,
     agent_version TEXT NOT NULL,
     policy_revision INTEGER,
     token_id TEXT NOT NULL,
     enrolled_at TEXT NOT NULL,
     last_seen TEXT,
     revoked_at TEXT,
     last_seq INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE events (
     ingest_id INTEGER PRIMARY KEY AUTOINCREMENT,
     device_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     event_id TEXT NOT NULL,
     time_ms INTEGER NOT NULL,
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
     ok INTEGER,
     error TEXT
   );
   CREATE INDEX commands_pending ON commands (device_id, delivered_at);`,
  `CREATE TABLE permission_requests (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
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
  // Login leases: times are ISO text in one form (isoTime), so they compare as text.
  `CREATE TABLE leases (
     device_id TEXT NOT NULL,
     session_id TEXT NOT NULL,
     user_key TEXT NOT NULL,
     user_name TEXT NOT NULL,
     role TEXT NOT NULL,
     hostname TEXT NOT NULL,
     since TEXT NOT NULL,
     expires_at TEXT NOT NULL,
     PRIMARY KEY (device_id, session_id)
   );
   -- No index on expires_at alone: the sweep of dead leases (once a minute) scans; every claim and renewal would pay for one.
   CREATE INDEX leases_user ON leases (user_key, expires_at);`,
  // Installed software per device (software-row.ts). A removed program keeps its row (present 0) with the
  // seq of the event that removed it, so an older event stored later cannot bring it back. program_key is
  // the SHA-256 of (source, name, version): three 256-character names are too long for PostgreSQL's btree
  // keys, and both stores key alike. The primary key's device_id prefix serves the listing.
  `CREATE TABLE software (
     device_id TEXT NOT NULL,
     program_key TEXT NOT NULL,
     source TEXT NOT NULL,
     name TEXT NOT NULL,
     version TEXT NOT NULL,
     publisher TEXT,
     present INTEGER NOT NULL,
     seq INTEGER NOT NULL,
     since TEXT NOT NULL,
     changed_at TEXT NOT NULL,
     PRIMARY KEY (device_id, program_key)
   );`,
  // Who may enroll and who counts (docs/architecture.md, "Enrollment"): a token has a use limit, a rate and an
  // approval mode; a device is pending until approved unless its token approves at once. Tokens made before
  // this count the devices they enrolled and now need approval; devices enrolled before it stay approved.
  // eviction_refs: the references a refused login claim was given, one per lease it may end (lease-claims.ts).
  `ALTER TABLE enrollment_tokens ADD COLUMN approval TEXT NOT NULL DEFAULT 'manual';
   ALTER TABLE enrollment_tokens ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 100;
   ALTER TABLE enrollment_tokens ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE enrollment_tokens ADD COLUMN per_minute INTEGER NOT NULL DEFAULT 10;
   ALTER TABLE enrollment_tokens ADD COLUMN window_start TEXT;
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
     user_key TEXT NOT NULL,
     target_device_id TEXT NOT NULL,
     target_session_id TEXT NOT NULL,
     expires_at TEXT NOT NULL
   );
   CREATE INDEX eviction_refs_claim ON eviction_refs (device_id, session_id);`,
  SEAL_DEVICE_SECRETS,
  PAGE_AND_CAP_SOFTWARE,
];

/** How many migrations came before device secrets were sealed: a database at that version holds them in clear. */
export const SQLITE_SECRET_SEALING = SQLITE_MIGRATIONS.indexOf(SEAL_DEVICE_SECRETS);
