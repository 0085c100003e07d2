import { z } from 'zod';
import {
  PROTOCOL_LIMITS,
  SEVERITIES,
  clauseCitation,
  codedError,
  hex4,
  identifier,
  name,
  nonNegativeInt,
  platform,
  roleId,
  sequence,
  sha256,
  text,
  timestamp,
  user,
  uuid,
} from './primitives';

export const severity = z.enum(SEVERITIES);

/** A USB device as observed. Strings come from the device and are sanitised before they get here. */
export const usbDevice = z.strictObject({
  vendorId: hex4,
  productId: hex4,
  serial: name.optional(),
  manufacturer: name.optional(),
  product: name.optional(),
  deviceClass: z.number().int().min(0).max(255),
  interfaceClasses: z.array(z.number().int().min(0).max(255)).max(64),
  bus: name.optional(),
  port: name.optional(),
});
export type UsbDevice = z.infer<typeof usbDevice>;

export const encryptionScheme = z.enum(['luks1', 'luks2', 'bitlocker', 'bitlocker-to-go', 'apfs-encrypted', 'filevault', 'hardware', 'none', 'unknown']);

export const volume = z.strictObject({
  device: name,
  filesystem: name.optional(),
  encrypted: z.union([z.boolean(), z.literal('unknown')]),
  scheme: encryptionScheme,
  sizeBytes: nonNegativeInt.optional(),
});

const processInfo = z.strictObject({
  pid: z.number().int().min(0),
  name,
  path: text(1024).optional(),
  sha256: sha256.optional(),
  signer: name.optional(),
  /** The executable was a loader (`ld-linux ./prog`): name and path above are the program it ran, this is the loader. */
  via: z.strictObject({ kind: z.enum(['loader']), name, path: text(1024) }).optional(),
  /** An interpreter's script (`python3 x.py`), as the process saw its path. */
  script: z.strictObject({ path: text(1024), sha256: sha256.optional() }).optional(),
  /** Linux: the process ran in a mount namespace of its own. */
  mountNamespace: z.enum(['private']).optional(),
  /** In such a namespace: whether the path names, on the computer, the file the process ran (false: another file, or none). */
  pathVouched: z.boolean().optional(),
});

const fileInfo = z.strictObject({
  path: text(1024),
  sha256: sha256.optional(),
  sizeBytes: nonNegativeInt.optional(),
});

/** A session on the device that sent the event; `user` is the account signed in, where the agent knows it. */
const session = { sessionId: identifier, user: name.optional() };

/** Another computer holding the user's place, as the refused user was shown it. */
const otherSession = z.strictObject({ hostname: name, since: timestamp });

const logoffReason = z.enum(['idle', 'end-of-day', 'remote', 'login-limit', 'tray-missing', 'aup-declined']);

const softwareCategory = z.enum([
  'hacking-tool',
  'evidence-elimination',
  'personal-cloud-storage',
  'filter-bypass',
  'game',
  'installer',
  'unapproved',
  'private-mounts',
]);

const permissionKind = z.enum(['usb-device', 'software', 'other']);

/** Every event type and the exact shape of its data. Adding a type here forces every consumer's switch to handle it. */
export const EVENT_DATA = {
  'agent.started': z.strictObject({ agentVersion: name, platform, hostname: name }),
  'agent.stopped': z.strictObject({ reason: name }),
  'agent.tamper': z.strictObject({
    target: z.enum(['agent', 'tray', 'policy', 'outbox']),
    action: z.enum(['killed', 'suspended', 'modified', 'missing']),
    process: processInfo.optional(),
  }),
  'outbox.overflow': z.strictObject({ capBytes: nonNegativeInt, dropped: z.partialRecord(severity, nonNegativeInt) }),
  'outbox.corrupt': z.strictObject({ segment: name, offset: nonNegativeInt, bytesSkipped: nonNegativeInt }),
  /**
   * Kept in place of an event too large to keep or to send (its envelope's time, severity and user are the
   * original's): `eventType` and `bytes` say what it was, `maxBytes` the limit it broke.
   */
  'outbox.too-large': z.strictObject({ eventType: name, bytes: nonNegativeInt, maxBytes: nonNegativeInt }),
  /** Raised by the collector itself (envelope deviceId `collector`) about the device named here. */
  'device.silent': z.strictObject({ deviceId: identifier, hostname: name, lastSeen: timestamp }),
  'policy.applied': z.strictObject({ policyId: identifier, version: nonNegativeInt }),
  'policy.rejected': z.strictObject({ policyId: identifier.optional(), problems: z.array(z.strictObject({ code: name, path: name })).max(100) }),
  /** Every USB device that arrives. `auditWouldBlock`: under audit mode, the block that was not carried out. */
  'usb.connected': z.strictObject({ device: usbDevice, auditWouldBlock: name.optional() }),
  'usb.removed': z.strictObject({ device: usbDevice }),
  'usb.blocked': z.strictObject({ device: usbDevice, reason: z.enum(['class-blocked', 'needs-permission', 'bad-usb']) }),
  'usb.storage.allowed': z.strictObject({
    device: usbDevice,
    scheme: encryptionScheme,
    volumes: z.array(volume).max(32),
    allowlisted: z.boolean(),
    /** The allowlist entry or offline code that let it in, when one did. */
    exception: z.strictObject({ kind: z.enum(['allowlist', 'offline-code']), id: name }).optional(),
    auditWouldBlock: name.optional(),
  }),
  'usb.storage.blocked': z.strictObject({
    device: usbDevice,
    reason: z.enum(['block-all', 'unencrypted', 'unknown-encryption', 'bad-usb', 'unreadable', 'class-blocked']),
    volumes: z.array(volume).max(32),
  }),
  'usb.storage.readonly': z.strictObject({ device: usbDevice, scheme: encryptionScheme, volumes: z.array(volume).max(32) }),
  /** The OS refused an action the rule decided on: the network manager must know the device may not be blocked. */
  'usb.enforcement.failed': z.strictObject({ device: usbDevice, action: z.enum(['allow', 'block', 'readonly', 'inspect']), error: codedError }),
  /** A wrong, expired or reused offline code was typed into a notice. */
  'usb.offline-code.rejected': z.strictObject({ device: usbDevice, code: name }),
  'session.started': z.strictObject({ ...session, role: roleId }),
  'session.ended': z.strictObject(session),
  'session.locked': z.strictObject(session),
  'session.unlocked': z.strictObject(session),
  'session.idle-warning': z.strictObject({ ...session, idleSeconds: nonNegativeInt, logoffInSeconds: nonNegativeInt }),
  'session.logoff': z.strictObject({ ...session, reason: logoffReason, confirmed: z.boolean() }),
  'login-limit.granted': z.strictObject({ ...session, limit: nonNegativeInt }),
  'login-limit.denied': z.strictObject({ ...session, limit: nonNegativeInt, others: z.array(otherSession).max(PROTOCOL_LIMITS.maxListLength) }),
  'login-limit.released': z.strictObject(session),
  'software.detected': z.strictObject({
    ruleId: identifier,
    category: softwareCategory.optional(),
    action: z.enum(['report', 'notify', 'terminate', 'quarantine']),
    audit: z.boolean(),
    process: processInfo.optional(),
    file: fileInfo.optional(),
  }),
  'software.terminated': z.strictObject({ ruleId: identifier, process: processInfo }),
  'software.installed': z.strictObject({ name, version: name.optional(), publisher: name.optional(), source: name }),
  'software.removed': z.strictObject({ name, version: name.optional(), source: name }),
  /** Raised by the collector itself (envelope deviceId `collector`): the device's software list is full; further programs are stored as events, not listed. */
  'software.inventory.full': z.strictObject({ deviceId: identifier, hostname: name, cap: nonNegativeInt }),
  'file.quarantined': z.strictObject({ quarantineId: identifier, file: fileInfo }),
  'file.restored': z.strictObject({ quarantineId: identifier, file: fileInfo }),
  'tray.missing': z.strictObject({ ...session, sinceSeconds: nonNegativeInt }),
  'permission.requested': z.strictObject({ requestId: identifier, kind: permissionKind, subject: name, reason: text() }),
  'permission.decided': z.strictObject({ requestId: identifier, decision: z.enum(['approved', 'refused']), expiresAt: timestamp.optional() }),
  /** Who agreed to which policy revision; the event's time is when. `user` is the account name the OS gives for `uid`. */
  'aup.agreed': z.strictObject({ ...session, user: name, uid: nonNegativeInt, policyId: identifier, version: nonNegativeInt }),
  'aup.declined': z.strictObject({ ...session, user: name, uid: nonNegativeInt, policyId: identifier, version: nonNegativeInt, signedOut: z.boolean() }),
  'problem.reported': z.strictObject({ kind: z.enum(['broken', 'virus', 'upsetting']), text: text(), systemDetails: text(16384).optional() }),
  /** Reports the agent counted instead of recording (the same words again, or over the rate), since `since`; `from` is whose tray. */
  'problem.held-back': z.strictObject({ from: text(200).optional(), repeats: nonNegativeInt, throttled: nonNegativeInt, since: timestamp }),
  'command.completed': z.strictObject({ commandId: identifier, ok: z.boolean(), code: name.optional() }),
} as const;

export type EventType = keyof typeof EVENT_DATA;
export const EVENT_TYPES = Object.keys(EVENT_DATA) as EventType[];
export type EventData<T extends EventType> = z.infer<(typeof EVENT_DATA)[T]>;

const envelopeFields = {
  /** Random, so that the same event resent is recognisably the same. */
  id: uuid,
  deviceId: identifier,
  /** Per-device, gap-free, starting at 1: the unit of acknowledgement. */
  seq: sequence,
  time: timestamp,
  severity,
  user: user.optional(),
  clause: clauseCitation.optional(),
};

function envelopeFor<T extends EventType>(type: T) {
  return z.strictObject({ ...envelopeFields, type: z.literal(type), data: EVENT_DATA[type] });
}

type EnvelopeSchemas = { [T in EventType]: ReturnType<typeof envelopeFor<T>> };
const envelopes = Object.fromEntries(EVENT_TYPES.map((t) => [t, envelopeFor(t)])) as EnvelopeSchemas;

export const eventEnvelope = z.discriminatedUnion(
  'type',
  EVENT_TYPES.map((t) => envelopes[t]) as unknown as [EnvelopeSchemas[EventType], ...EnvelopeSchemas[EventType][]],
);
export type EventEnvelope = { [T in EventType]: z.infer<EnvelopeSchemas[T]> }[EventType];
export type EventOf<T extends EventType> = Extract<EventEnvelope, { type: T }>;
