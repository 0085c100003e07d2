import type { AgentToCollector, CodedError, Command, EventEnvelope, EventType, Platform, Severity } from '../../shared/protocol';

/**
 * Whether a device counts: `pending` until the network manager approves it (it may not connect
 * past authentication meanwhile), `approved`, or `refused` (revoked as well).
 */
export const DEVICE_APPROVALS = ['pending', 'approved', 'refused'] as const;
export type DeviceApproval = (typeof DEVICE_APPROVALS)[number];

export interface DeviceRecord {
  id: string;
  hostname: string;
  platform: Platform;
  agentVersion: string;
  policyRevision: number | null;
  enrolledAt: string;
  lastSeen: string | null;
  revokedAt: string | null;
  /** The highest sequence number durably stored for this device. */
  lastSeq: number;
  /** The collector process holding its connection, and when that process last said so. */
  connectedTo: string | null;
  presenceAt: string | null;
  approval: DeviceApproval;
  /** The enrollment token it enrolled with, and the network address it enrolled from (as the collector saw it). */
  tokenId: string;
  enrolledFrom: string | null;
  /** When it was approved or refused, and by which API token (null: at enrollment, by an automatic token). */
  decidedAt: string | null;
  decidedBy: string | null;
}

export interface CommandRecord {
  id: string;
  deviceId: string;
  command: Command;
  createdAt: string;
  deliveredAt: string | null;
  completedAt: string | null;
  ok: boolean | null;
  error: CodedError | null;
}

/** Events the collector itself raises (a device gone silent) are stored under this device id. */
export const COLLECTOR_DEVICE_ID = 'collector';

export interface DeviceAuth {
  secret: Buffer;
  revoked: boolean;
  lastSeq: number;
  approval: DeviceApproval;
}

export interface NewDevice {
  id: string;
  installationId: string;
  secret: Buffer;
  hostname: string;
  platform: Platform;
  agentVersion: string;
  tokenId: string;
  now: string;
  /** `approved` only when the token approves at once; the collector never takes the device's word for it. */
  approval: 'pending' | 'approved';
  enrolledFrom: string | null;
}

export interface DeviceConnection {
  hostname: string;
  agentVersion: string;
  policyRevision: number | null;
  instance: string;
  now: string;
  confirmed: boolean;
}

export interface InstallationRecord {
  deviceId: string;
  secret: Buffer;
  /** The device has proved its secret at least once, so its identity file exists. */
  confirmed: boolean;
  revoked: boolean;
  approval: DeviceApproval;
}

/** `manual`: devices it enrolls wait for the network manager's approval; `automatic`: they count at once. */
export type EnrollmentApproval = 'manual' | 'automatic';

export interface NewEnrollmentToken {
  id: string;
  tokenHash: string;
  note: string;
  createdAt: string;
  expiresAt: string;
  approval: EnrollmentApproval;
  /** Devices it may enroll, in all. */
  maxUses: number;
  /** Devices it may enroll in any one minute. */
  perMinute: number;
}

export interface EnrollmentTokenRecord {
  id: string;
  note: string;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  approval: EnrollmentApproval;
  maxUses: number;
  uses: number;
  perMinute: number;
  lastUsedAt: string | null;
}

/** A token that may still enroll: known, unexpired, unrevoked (its uses may be spent: see useEnrollmentToken). */
export interface UsableEnrollmentToken {
  id: string;
  approval: EnrollmentApproval;
  uses: number;
  maxUses: number;
}

export interface EventQuery {
  device?: string;
  type?: string;
  user?: string;
  severity?: string;
  /** ISO times, inclusive `since`, exclusive `until`, compared on the event's own time. */
  since?: string;
  until?: string;
  /** Opaque: the `next` of the previous page. */
  cursor?: string;
  limit: number;
}

export interface StoredEvent extends Record<string, unknown> {
  receivedAt: string;
}

type PermissionRequestMessage = Extract<AgentToCollector, { type: 'permission.request' }>;
export type PermissionKind = PermissionRequestMessage['kind'];
export type PermissionSubject = PermissionRequestMessage['subject'];
export type PermissionUser = PermissionRequestMessage['user'];
export const PERMISSION_STATUSES = ['pending', 'approved', 'refused'] as const;
export type PermissionStatus = (typeof PERMISSION_STATUSES)[number];
export type PermissionScope = 'device' | 'all';

export interface NewPermissionRequest {
  deviceId: string;
  requestId: string;
  kind: PermissionKind;
  subject: PermissionSubject;
  user: PermissionUser;
  reason: string;
  createdAt: string;
}

export interface PermissionRequestRecord extends NewPermissionRequest {
  status: PermissionStatus;
  decidedAt: string | null;
  /** The API token that decided it. */
  decidedBy: string | null;
  note: string | null;
  /** When an approval ends; null for refusals and approvals without an end. */
  expiresAt: string | null;
  scope: PermissionScope | null;
  /** When the decision was sent down the device's connection; null until then. */
  decisionDeliveredAt: string | null;
}

export interface PermissionDecision {
  decision: 'approved' | 'refused';
  decidedAt: string;
  decidedBy: string;
  note: string | null;
  expiresAt: string | null;
  scope: PermissionScope | null;
}

export interface PermissionRequestQuery {
  status?: PermissionStatus;
  device?: string;
  /** Opaque: the `next` of the previous page. Newest first. */
  cursor?: string;
  limit: number;
}

export interface NewCommand {
  id: string;
  deviceId: string;
  command: Command;
  createdAt: string;
}

/**
 * A login lease: a user signed in on a device, in one session, until
 * `expiresAt` unless renewed. Keyed by (deviceId, sessionId).
 */
export interface LeaseRecord {
  deviceId: string;
  sessionId: string;
  /** The user's name as the device gave it; leases are matched on its lower case. */
  user: string;
  role: string;
  hostname: string;
  /** When the lease was first granted. */
  since: string;
  expiresAt: string;
}

/** Another lease of the same user, as a verdict lists it. */
export interface LeaseSummary {
  deviceId: string;
  hostname: string;
  sessionId: string;
  since: string;
  /**
   * A refused claim's reference to this lease: a later claim from the same device, session and user
   * may end the lease with it (`evict`), once, until the claim's `refSeconds` have passed.
   */
  ref?: string;
}

export interface LeaseClaim {
  deviceId: string;
  hostname: string;
  /** As the device gave it: kept for display, compared in lower case. */
  user: string;
  sessionId: string;
  role: string;
  /** ISO time: the collector's clock, never the device's. */
  now: string;
  leaseSeconds: number;
  /** Most distinct devices the user may hold live leases on; null: no limit (the lease is still recorded). */
  limit: number | null;
  /**
   * The user chose to sign out elsewhere to sign in here: `ref` is a reference an
   * earlier refusal of this same (device, session, user) gave. The lease it names is
   * ended first, in the same transaction, if the reference is unexpired and unused and
   * the lease is still that user's and live. Using one reference spends every reference
   * of that refusal. Any other reference is ignored: the claim is decided alone.
   */
  evict?: { ref: string };
  /** A refused claim gets a reference for each lease it lists, valid this long. Absent: none. */
  refSeconds?: number;
  /**
   * Most distinct users whose live leases one device may hold: a claim for a user with no
   * live lease on this device, on a device holding this many other users, is refused with
   * `deviceFull`. Null or absent: no cap.
   */
  maxUsersPerDevice?: number | null;
}

export interface LeaseVerdict {
  granted: boolean;
  /**
   * The user's other live leases (every one but the claimed session's), oldest first, at most
   * MAX_VERDICT_LEASES; with a `ref` each when the claim was refused and asked for references.
   */
  leases: LeaseSummary[];
  /** The lease the `evict` reference named, ended by this claim; null when none was. */
  evicted: { deviceId: string; sessionId: string; hostname: string } | null;
  /** Refused because the device already holds `maxUsersPerDevice` other users (no lease, no references). */
  deviceFull: boolean;
}

export interface LeaseQuery {
  /** Compared in lower case. */
  user?: string;
  deviceId?: string;
  now: string;
}

/** A program installed on a device, as its `software.installed` and `software.removed` events say. */
export interface SoftwareRecord {
  name: string;
  version: string | null;
  publisher: string | null;
  /** Where the agent found it: `dpkg`, `rpm`, `registry:hklm`, `registry:hku:<sid>`, `bundles:/Applications`, … */
  source: string;
  /** The time (the device's clock) of the event that reported it installed; kept while it stays installed. */
  since: string;
}

export interface SoftwareQuery {
  /** Part of the name, in any case. */
  q?: string;
  /** Opaque: the `next` of the previous page. */
  cursor?: string;
  limit: number;
}

/** A page of a list the API serves, and the cursor of the next page (null: this was the last). */
export interface Page {
  cursor?: string;
  limit: number;
}

/** A page of the devices, only those with this `approval` when it is given. */
export interface DevicePageQuery extends Page {
  approval?: DeviceApproval;
}

export interface InsertResult {
  /** Events new to the store; the rest were resends of events it already held. */
  inserted: number;
  lastSeq: number;
  /** The batch was refused whole and nothing of it stored (docs/protocol.md, "Sequence numbers"). */
  refused?: BatchRefusal;
  /**
   * Only when the device's software list was full (`maxProgramsPerDevice`): how many programs this batch
   * reported installed that were stored as events but not listed, and whether the list became full with
   * this batch (it was not full before, or had room again since); `cap` is the store's maxProgramsPerDevice.
   */
  softwareRefused?: { programs: number; newlyFull: boolean; cap: number };
}

/**
 * Why a batch was refused: one of its seqs is stored (or repeated in the batch) under another event id,
 * or the device is revoked (checked in the same transaction, so nothing slips in after a revocation).
 */
export type BatchRefusal = { code: 'INV_ERR_SEQ_CONFLICT'; seq: number } | { code: 'INV_ERR_DEVICE_REVOKED' };

/**
 * Everything the collector keeps. Two implementations (SQLite, PostgreSQL)
 * pass one contract suite. Every write resolves only once it is durable, so
 * an acknowledgement sent after it can be trusted.
 */
export interface CollectorStore {
  readonly kind: 'sqlite' | 'postgres';
  migrate(): Promise<void>;
  close(): Promise<void>;

  createEnrollmentToken(token: NewEnrollmentToken): Promise<void>;
  /** The token if it is known, unexpired at `now` and not revoked, whether or not its uses are spent. */
  findUsableEnrollmentToken(tokenHash: string, now: string): Promise<UsableEnrollmentToken | undefined>;
  /**
   * Counts one enrollment against the token, atomically (however many processes enroll at once):
   * `used-up` when it has enrolled `maxUses` devices, `rate-limited` when it has enrolled
   * `perMinute` in the minute-long window that began with the first enrollment of that window.
   */
  useEnrollmentToken(id: string, now: string): Promise<'used' | 'used-up' | 'rate-limited'>;
  revokeEnrollmentToken(id: string, now: string): Promise<boolean>;
  listEnrollmentTokens(): Promise<EnrollmentTokenRecord[]>;

  enrollDevice(device: NewDevice): Promise<void>;
  deviceByInstallation(installationId: string): Promise<InstallationRecord | undefined>;

  deviceAuth(deviceId: string): Promise<DeviceAuth | undefined>;
  revokeDevice(deviceId: string, now: string): Promise<boolean>;
  /**
   * The network manager's decision on a pending device: `approved`, or `refused` (which also
   * revokes it). False when the device is unknown or not pending (decided once, whoever races).
   */
  decideDevice(deviceId: string, decision: 'approved' | 'refused', now: string, by: string): Promise<boolean>;
  /**
   * A device has authenticated on this process: what it reported, that it was
   * seen, that this process holds it, and (with `confirmed`) that it has proved
   * its secret. One write, because a reconnect storm is made of these.
   */
  deviceConnected(deviceId: string, seen: DeviceConnection): Promise<void>;
  /** Every device, by hostname then id: for the collector's own use (an approval for all computers). */
  listDevices(): Promise<DeviceRecord[]>;
  /** One page of the devices, in the same order (hostname, then id, compared byte by byte), for the API. */
  listDevicePage(query: DevicePageQuery): Promise<{ devices: DeviceRecord[]; next: string | null }>;

  /**
   * Stores each event once, keyed by (device, seq), however often it is sent. Durable when it resolves.
   * A seq already stored under the same event id is a resend (not stored again); under another id, the
   * whole batch is refused (`refused`), as is every batch of a revoked device. A seq below the highest
   * stored that was never stored is stored: a late batch. A newly stored `software.installed` or
   * `software.removed` updates the device's software list in the same transaction, unless the list
   * already holds a later event about that program (see software-row.ts). A list holding
   * `maxProgramsPerDevice` programs takes no new one (the event is still stored): see
   * InsertResult.softwareRefused.
   */
  insertEvents(deviceId: string, events: readonly EventEnvelope[], receivedAt: string): Promise<InsertResult>;
  /** The same for batches from many devices in one transaction: one commit, one fsync, for all of them. */
  insertEventBatches(
    batches: ReadonlyArray<{ deviceId: string; events: readonly EventEnvelope[] }>,
    receivedAt: string,
    /** Devices that connected meanwhile: recorded in the same transaction (see deviceConnected). */
    connections?: ReadonlyArray<{ deviceId: string; connection: DeviceConnection }>,
  ): Promise<InsertResult[]>;
  queryEvents(query: EventQuery): Promise<{ events: StoredEvent[]; next: string | null }>;
  /**
   * A page of the programs installed on the device now, sorted by name without regard to case, then by
   * name, version and source (compared by code point); empty for an unknown device. At most
   * `maxProgramsPerDevice` are listed (see insertEventBatches).
   */
  listSoftware(deviceId: string, query: SoftwareQuery): Promise<{ software: SoftwareRecord[]; next: string | null }>;
  countEvents(): Promise<number>;

  /** Forgets it, unless another process has taken the device over since. */
  clearDevicePresence(deviceId: string, instance: string): Promise<void>;
  /**
   * Refreshes `presenceAt` (and `lastSeen`) for every device this process
   * holds, so other processes can tell a live holder from a dead one and a
   * connected but quiet device is not taken for silent.
   * Returns those of them that are revoked: a revocation notice that never
   * arrived still ends their connections at the next heartbeat.
   */
  refreshPresence(instance: string, now: string): Promise<string[]>;
  /** Clears presence left by a process that stopped or died. */
  clearPresence(instance: string): Promise<void>;

  createCommand(command: { id: string; deviceId: string; command: Command; createdAt: string }): Promise<void>;
  /** Commands for the device not yet sent down a connection, oldest first. */
  undeliveredCommands(deviceId: string): Promise<CommandRecord[]>;
  markCommandDelivered(id: string, now: string): Promise<void>;
  /** The send failed after the claim: the command is undelivered again. */
  undoCommandDelivery(id: string): Promise<void>;
  completeCommand(id: string, result: { ok: boolean; error: CodedError | null; now: string }): Promise<boolean>;
  getCommand(id: string): Promise<CommandRecord | undefined>;

  /**
   * Devices last heard from before `cutoff` and not yet reported silent:
   * marks them silent and returns them. Atomic, so among several collector
   * processes exactly one reports each silence.
   */
  claimNewlySilent(cutoff: string, now: string): Promise<Array<{ id: string; hostname: string; lastSeen: string }>>;
  /** Stores an event the collector raised itself, under COLLECTOR_DEVICE_ID with the next collector sequence number. */
  insertCollectorEvent(event: { id: string; time: string; type: EventType; severity: Severity; data: unknown }, receivedAt: string): Promise<EventEnvelope>;

  /** API tokens are kept as hashes; the token itself is shown once, to whoever created it. */
  createApiToken(token: { id: string; tokenHash: string; role: 'admin' | 'readonly'; createdAt: string }): Promise<void>;
  apiTokenRole(tokenHash: string): Promise<'admin' | 'readonly' | undefined>;
  /** The same, with the token's id: who did something, for the record. */
  apiToken(tokenHash: string): Promise<{ id: string; role: 'admin' | 'readonly' } | undefined>;

  /**
   * Stores a device's request once, keyed by (device, requestId): a resend
   * changes nothing and returns what is stored (`created` false).
   */
  createPermissionRequest(request: NewPermissionRequest): Promise<{ created: boolean; record: PermissionRequestRecord }>;
  getPermissionRequest(deviceId: string, requestId: string): Promise<PermissionRequestRecord | undefined>;
  listPermissionRequests(query: PermissionRequestQuery): Promise<{ requests: PermissionRequestRecord[]; next: string | null }>;
  /**
   * Decides a pending request and queues `commands` with it, in one
   * transaction. Exactly one decision wins, however many processes race:
   * throws INV_ERR_PERMISSION_DECIDED for the others (and for any later one),
   * INV_ERR_PERMISSION_NOT_FOUND for an unknown request.
   */
  decidePermissionRequest(deviceId: string, requestId: string, decision: PermissionDecision, commands: readonly NewCommand[]): Promise<PermissionRequestRecord>;
  /** Decided requests of the device whose decision has not been sent, oldest decision first. */
  undeliveredDecisions(deviceId: string): Promise<PermissionRequestRecord[]>;
  /** Marks the decision sent; false when it was sent already (by this or another process). */
  claimDecisionDelivery(deviceId: string, requestId: string, now: string): Promise<boolean>;
  /** The send failed after the claim, or the device asked again: the decision is to be sent (again). */
  undoDecisionDelivery(deviceId: string, requestId: string): Promise<void>;
  hasApiToken(role: 'admin' | 'readonly'): Promise<boolean>;

  /**
   * Decides a login claim and records the lease if it is granted, atomically:
   * however many claims race, on however many collector processes, a user
   * never holds live leases on more than `limit` distinct devices. Leases with
   * `expiresAt` <= `now` are dead and do not count. Granted when the claimed
   * session already holds this user's live lease (the lease is extended,
   * `since` kept), when the user holds a live lease on this device already
   * (another session there), when `limit` is null, or when the user's live
   * leases are on fewer than `limit` other devices. A live lease of another
   * user on the same (device, session) is stale (the device says the session
   * is now this user's) and is removed. Only a granted claim creates a lease.
   * Before the rule: a claim for a user new to the device, on a device already
   * holding `maxUsersPerDevice` other users, is refused (`deviceFull`); then the
   * `evict` reference, if it is this claim's own, ends the lease it names. A
   * refused claim with `refSeconds` replaces the references of its (device,
   * session) with one per listed lease. Dead references are deleted with dead
   * leases (dropExpiredLeases).
   */
  claimLease(claim: LeaseClaim): Promise<LeaseVerdict>;
  /**
   * Extends the device's live leases among `sessionIds` to `now` + `leaseSeconds`;
   * a dead lease is never revived. Returns the session ids renewed.
   */
  renewLeases(deviceId: string, sessionIds: readonly string[], now: string, leaseSeconds: number): Promise<string[]>;
  /** Ends the device's lease for the session; false when it had none. */
  releaseLease(deviceId: string, sessionId: string): Promise<boolean>;
  /** Live leases, by user (any case) and/or device, oldest first. */
  liveLeases(query: LeaseQuery): Promise<LeaseRecord[]>;
  /** One page of the same, for the API: by `since`, then device and session id, compared byte by byte. */
  listLiveLeasePage(query: LeaseQuery & Page): Promise<{ sessions: LeaseRecord[]; next: string | null }>;
  /** Deletes dead leases, and eviction references past their time; returns how many leases. */
  dropExpiredLeases(now: string): Promise<number>;
}
