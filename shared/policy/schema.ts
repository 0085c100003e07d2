import { z } from 'zod';
import { PROTOCOL_LIMITS, hex4, identifier, name, nonNegativeInt, roleId, sha256, text, timestamp } from '../protocol/primitives';

/** The version of the policy document format (not of a school's policy: that is `revision`). */
export const POLICY_FORMAT_VERSION = 1 as const;

const clauseRef = identifier.describe('the id of an entry in `clauses`');

export const clauseSchema = z.strictObject({
  document: name,
  section: name,
  quote: text(PROTOCOL_LIMITS.maxQuoteLength).min(1),
  /** Where the document can be read, for the tray's "school's ICT policy" menu item. */
  url: z.url({ protocol: /^https?$/ }).optional(),
});

export const roleDefinition = z.strictObject({
  id: roleId,
  label: name,
  /** OS groups (local or directory, e.g. `pupils`, `SCHOOL\\Pupils`) whose members have this role; matched case-insensitively. */
  groups: z.array(name).max(100),
});

export const USB_CLASS_NAMES = {
  audio: 0x01,
  cdc: 0x02,
  hid: 0x03,
  physical: 0x05,
  image: 0x06,
  printer: 0x07,
  'mass-storage': 0x08,
  hub: 0x09,
  'cdc-data': 0x0a,
  'smart-card': 0x0b,
  'content-security': 0x0d,
  video: 0x0e,
  healthcare: 0x0f,
  'audio-video': 0x10,
  billboard: 0x11,
  'usb-c-bridge': 0x12,
  diagnostic: 0xdc,
  wireless: 0xe0,
  miscellaneous: 0xef,
  'application-specific': 0xfe,
  'vendor-specific': 0xff,
} as const;
export type UsbClassName = keyof typeof USB_CLASS_NAMES;
const usbClassName = z.enum(Object.keys(USB_CLASS_NAMES) as [UsbClassName, ...UsbClassName[]]);

export const usbStorageSettings = z.strictObject({
  /** `block-all`: every USB storage device; `allow-encrypted`: only volumes that are all encrypted; `audit`: decide and report, but never block. */
  mode: z.enum(['block-all', 'allow-encrypted', 'audit']),
  /** What a volume with no recognisable signature (VeraCrypt, damaged) gets under `allow-encrypted`. */
  unknownEncryption: z.enum(['block', 'allow']),
  /** Mount read-only instead of blocking, where the OS allows it. */
  readOnlyInsteadOfBlock: z.boolean(),
  /** Whether the block notice offers "Ask for permission". */
  allowRequests: z.boolean(),
  clause: clauseRef,
});

export const usbDeviceSettings = z.strictObject({
  /** Classes that are used without asking (keyboards, mice, headphones, built-in cameras and Bluetooth). */
  allowedClasses: z.array(usbClassName).max(32),
  /** What happens to a device of any other class (mass storage is governed by `usbStorage`). */
  otherClasses: z.enum(['log', 'block']),
  /** Block a storage device that also presents a keyboard, unless allowlisted. */
  badUsbGuard: z.boolean(),
  allowRequests: z.boolean(),
  clause: clauseRef,
});

export const usbAllowlistEntry = z.strictObject({
  id: identifier,
  vendorId: hex4,
  productId: hex4,
  serial: name.optional(),
  /** Absent: allowed until removed. */
  expiresAt: timestamp.optional(),
  /** Absent: every device; else only these device ids. */
  devices: z.array(identifier).max(PROTOCOL_LIMITS.maxListLength).optional(),
  note: text(),
});

/**
 * An allowlist entry for every computer, as the collector sends it to a computer that did not ask:
 * the USB device's ids are not in it, only a digest a computer can match but not read
 * (HMAC-SHA256 under that computer's own key, node-common/usb-allow-digest.ts). `serial` says
 * whether the digest covers the device's serial.
 */
export const keyedUsbAllowlistEntry = z.strictObject({
  id: identifier,
  match: z.strictObject({
    scheme: z.literal('hmac-sha256-v1'),
    digest: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a base64url SHA-256 digest'),
    serial: z.boolean(),
  }),
  expiresAt: timestamp.optional(),
  note: text(),
});

/** What a `usb-allow` command carries: the entry itself, or for another computer its keyed form. */
export const deviceUsbAllowlistEntry = z.union([usbAllowlistEntry, keyedUsbAllowlistEntry]);

export const hardwareEncryptedModel = z.strictObject({ vendorId: hex4, productId: hex4, note: text() });

export const loginLimitSettings = z.strictObject({
  /** Most school devices one login may be signed in on at once; `null`: no limit. */
  maxDevices: z.number().int().min(1).max(100).nullable(),
  /** When the collector cannot be reached at login. */
  offline: z.enum(['allow-and-reconcile', 'refuse']),
  /** Seconds a lease lives without renewal: how long a silent device holds its place. */
  leaseSeconds: z.number().int().min(30).max(86400),
  /** Seconds a refused user has to choose which session to end. */
  graceSeconds: z.number().int().min(0).max(3600),
  clause: clauseRef,
});

const weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);

export const logoffSettings = z.strictObject({
  idle: z
    .strictObject({
      afterMinutes: z.number().int().min(1).max(1440),
      warningSeconds: z.number().int().min(10).max(3600),
      /** Whether "I'm still here" on the countdown cancels it. */
      stillHereAccepted: z.boolean(),
    })
    .nullable(),
  endOfDay: z
    .strictObject({
      /** Local time, 24-hour `HH:MM`. */
      time: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM'),
      days: z.array(weekday).min(1).max(7),
      warningMinutes: z.number().int().min(1).max(120),
    })
    .nullable(),
  /** What happens when the tray has not connected `trayGraceSeconds` after login, or disappears. */
  onTrayMissing: z.enum(['report', 'logoff']),
  trayGraceSeconds: z.number().int().min(10).max(3600),
  clause: clauseRef,
});

export const SOFTWARE_CATEGORIES = ['hacking-tool', 'evidence-elimination', 'personal-cloud-storage', 'filter-bypass', 'game'] as const;
export const softwareCategory = z.enum(SOFTWARE_CATEGORIES);
const softwareAction = z.enum(['report', 'notify', 'terminate']);

export const softwareMatch = z
  .strictObject({
    name: name.optional(),
    /** A glob over the full path: `*` within a folder, `**` across folders. */
    pathPattern: text(1024).optional(),
    sha256: sha256.optional(),
    /** Windows Authenticode publisher, or macOS team id / signing id. */
    signer: name.optional(),
  })
  .refine((m) => m.name !== undefined || m.pathPattern !== undefined || m.sha256 !== undefined || m.signer !== undefined, {
    message: 'a match needs at least one of name, pathPattern, sha256, signer',
  });

export const softwareRule = z.strictObject({
  id: identifier,
  match: softwareMatch,
  category: softwareCategory.optional(),
  action: softwareAction,
  note: text(),
  clause: clauseRef,
});

export const softwareSettings = z.strictObject({
  /** `denylist`: only what a rule or category names is acted on; `allowlist`: anything not approved is; `audit`: report what would have happened. */
  mode: z.enum(['denylist', 'allowlist', 'audit']),
  categories: z.partialRecord(softwareCategory, z.strictObject({ action: softwareAction, clause: clauseRef })),
  rules: z.array(softwareRule).max(PROTOCOL_LIMITS.maxListLength),
  /** Programs always allowed in allowlist mode (the OS and the school's own are added by the agent). */
  approved: z.array(softwareMatch).max(PROTOCOL_LIMITS.maxListLength),
  /** New executables and installers in watched folders. */
  downloads: z.strictObject({ action: z.enum(['ignore', 'report', 'quarantine']), clause: clauseRef }),
  /** Attempts to install software. */
  installs: z.strictObject({ action: z.enum(['ignore', 'report', 'notify', 'terminate']), clause: clauseRef }),
  /** What "only approved programmes" is grounded in, in allowlist mode. */
  clause: clauseRef,
});

export const aupSettings = z.strictObject({
  /** Show the acceptable-use agreement at first login and on each new policy revision. */
  required: z.boolean(),
  onDecline: z.enum(['report', 'logoff']),
  /** A short summary shown in the agreement window, in plain words. */
  summary: text(),
  clause: clauseRef,
});

export const failsafeSettings = z.strictObject({
  /** A storage volume that cannot be read (I/O error, timeout) is treated as... */
  unreadableVolume: z.enum(['block', 'allow']),
  /** Whether a virus report puts up the on-screen warning notice. */
  virusWarningNotice: z.boolean(),
  clause: clauseRef.optional(),
});

export const retentionSettings = z.strictObject({
  /** Days the collector keeps events before deleting them. */
  eventDays: z.number().int().min(1).max(3650),
});

export const noticeSettings = z.strictObject({
  /** Who to ask, as notices name them: "the School Network Manager". */
  contact: name,
  /** Notices of the same kind at most once per this many seconds; the rest are counted, not shown. */
  throttleSeconds: z.number().int().min(0).max(86400),
});

/** A section whose settings can differ by role: `default`, overridden field by field in `roles`. */
function perRole<S extends z.ZodObject>(settings: S) {
  return z.strictObject({
    default: settings,
    roles: z.record(roleId, settings.partial()).optional(),
  });
}

export const policySchema = z.strictObject({
  v: z.literal(POLICY_FORMAT_VERSION),
  id: identifier,
  name,
  school: name,
  /** Increases with every change; a new revision asks users to agree again when `aup.required`. */
  revision: nonNegativeInt,
  description: text().optional(),
  clauses: z.record(identifier, clauseSchema),
  roles: z.strictObject({
    /** First match wins, so list the most specific role first. */
    definitions: z.array(roleDefinition).min(1).max(50),
    /** The role of a user in none of the listed groups. */
    default: roleId,
  }),
  notices: noticeSettings,
  usbStorage: perRole(usbStorageSettings),
  usbDevices: perRole(usbDeviceSettings),
  usbAllowlist: z.array(usbAllowlistEntry).max(PROTOCOL_LIMITS.maxListLength),
  hardwareEncryptedModels: z.array(hardwareEncryptedModel).max(PROTOCOL_LIMITS.maxListLength),
  loginLimit: perRole(loginLimitSettings),
  logoff: perRole(logoffSettings),
  software: perRole(softwareSettings),
  aup: aupSettings,
  failsafe: failsafeSettings,
  retention: retentionSettings,
});

export type Policy = z.infer<typeof policySchema>;
export type UsbStorageSettings = z.infer<typeof usbStorageSettings>;
export type UsbDeviceSettings = z.infer<typeof usbDeviceSettings>;
export type UsbAllowlistEntry = z.infer<typeof usbAllowlistEntry>;
export type KeyedUsbAllowlistEntry = z.infer<typeof keyedUsbAllowlistEntry>;
export type DeviceUsbAllowlistEntry = z.infer<typeof deviceUsbAllowlistEntry>;
export type HardwareEncryptedModel = z.infer<typeof hardwareEncryptedModel>;
export type LoginLimitSettings = z.infer<typeof loginLimitSettings>;
export type LogoffSettings = z.infer<typeof logoffSettings>;
export type SoftwareSettings = z.infer<typeof softwareSettings>;
export type PolicyClause = z.infer<typeof clauseSchema>;

/** The sections whose settings differ by role. */
export const ROLE_SECTIONS = ['usbStorage', 'usbDevices', 'loginLimit', 'logoff', 'software'] as const;
export type RoleSection = (typeof ROLE_SECTIONS)[number];
