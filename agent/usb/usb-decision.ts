import {
  USB_CLASS_NAMES,
  type DeviceUsbAllowlistEntry,
  type HardwareEncryptedModel,
  type UsbDeviceSettings,
  type UsbStorageSettings,
} from '../../shared/policy/schema';
import type { UsbDevice } from '../../shared/protocol';
import type { StorageAssessment } from './storage-assessment';
import { USB_CLASS, hasInterfaceClass } from './usb-platform';

export type StorageBlockReason = 'block-all' | 'unencrypted' | 'unknown-encryption' | 'bad-usb' | 'unreadable' | 'class-blocked';
export type DeviceBlockReason = 'class-blocked' | 'needs-permission' | 'bad-usb';

/** Everything the rule looks at: one observation and the policy as it applies to this user's role. */
export interface UsbDecisionInput {
  device: UsbDevice;
  /** For a storage device: its media, once read. Absent until then. */
  storage?: StorageAssessment | undefined;
  storageSettings: UsbStorageSettings;
  deviceSettings: UsbDeviceSettings;
  /** The policy's entries and this computer's own: in clear, or keyed to this computer (matched by `digests`). */
  allowlist: readonly DeviceUsbAllowlistEntry[];
  /**
   * The device under this computer's key for keyed entries (node-common/usb-allow-digest.ts): with its
   * serial, and without. Absent: no identity yet, and keyed entries match nothing.
   */
  digests?: { withSerial?: string | undefined; withoutSerial: string } | undefined;
  hardwareEncryptedModels: readonly HardwareEncryptedModel[];
  /** What to do with media that cannot be read (the policy's failsafe). */
  unreadableVolume: 'block' | 'allow';
  /** This computer's device id, for allowlist entries limited to some computers. */
  computerId: string | undefined;
  /** The device's descriptors could not be read whole: what it really is cannot be known. */
  descriptorsIncomplete?: boolean | undefined;
  /** A valid offline code was typed for this very attachment. */
  offlineGrant?: string | undefined;
  nowMs: number;
}

export type UsbDecision =
  /** The answer depends on the media: read it (bounded) and ask again with `storage`. */
  | { action: 'inspect' }
  | {
      action: 'allow';
      subject: 'storage' | 'device';
      clauseId: string;
      exception?: { kind: 'allowlist' | 'offline-code'; id: string };
      /** `hardware` for a listed hardware-encrypted model; otherwise from the media. */
      scheme?: 'hardware';
      /** Audit mode (or an agent only observing): the block that would have happened. */
      auditWouldBlock?: StorageBlockReason | DeviceBlockReason;
    }
  | { action: 'block' | 'readonly'; subject: 'storage'; reason: StorageBlockReason; clauseId: string; canAsk: boolean }
  | { action: 'block'; subject: 'device'; reason: DeviceBlockReason; clauseId: string; canAsk: boolean };

/** Classes that describe the device as a whole rather than what it does: 0 (per interface) and 0xef (composite). */
const STRUCTURAL_CLASSES = new Set([0x00, 0xef]);

export function isStorage(device: UsbDevice): boolean {
  return hasInterfaceClass(device, USB_CLASS.massStorage);
}

/**
 * The allowlist entry that covers this device now, if any, not expired: for an entry in clear, ids
 * match, serial when the entry names one, this computer included; for a keyed entry, the digest of
 * the device under this computer's key (with its serial when the entry covers one).
 */
export function matchingAllowlistEntry(
  input: Pick<UsbDecisionInput, 'device' | 'allowlist' | 'computerId' | 'nowMs' | 'digests'>,
): DeviceUsbAllowlistEntry | undefined {
  const { device, computerId, nowMs, digests } = input;
  return input.allowlist.find((e) => {
    if (e.expiresAt !== undefined && Date.parse(e.expiresAt) <= nowMs) return false;
    if ('match' in e) {
      const digest = e.match.serial ? digests?.withSerial : digests?.withoutSerial;
      return digest !== undefined && digest === e.match.digest;
    }
    return (
      e.vendorId === device.vendorId &&
      e.productId === device.productId &&
      (e.serial === undefined || e.serial === device.serial) &&
      (e.devices === undefined || (computerId !== undefined && e.devices.includes(computerId)))
    );
  });
}

/**
 * The USB rule, a pure function of one observation and the policy. Order
 * matters: an approved exception wins over everything (it is the network
 * manager's decision about this very device); then the BadUSB guard, since a
 * stick that types is an attack whatever is on it; then storage by mode and
 * media; then every other device by class.
 */
export function decideUsb(input: UsbDecisionInput): UsbDecision {
  const { device, storageSettings: s, deviceSettings: d } = input;
  const storage = isStorage(device);
  const subject = storage ? 'storage' : 'device';

  // Before any exception: an allowlist entry names ids a malformed device could copy while hiding a keyboard.
  if (input.descriptorsIncomplete) {
    return storage
      ? { action: 'block', subject: 'storage', reason: 'bad-usb', clauseId: d.clause, canAsk: false }
      : { action: 'block', subject: 'device', reason: 'bad-usb', clauseId: d.clause, canAsk: false };
  }
  if (input.offlineGrant) return { action: 'allow', subject, clauseId: s.clause, exception: { kind: 'offline-code', id: input.offlineGrant } };
  const entry = matchingAllowlistEntry(input);
  if (entry) return { action: 'allow', subject, clauseId: storage ? s.clause : d.clause, exception: { kind: 'allowlist', id: entry.id } };

  if (storage && d.badUsbGuard && hasInterfaceClass(device, USB_CLASS.hid)) {
    return { action: 'block', subject: 'storage', reason: 'bad-usb', clauseId: d.clause, canAsk: d.allowRequests };
  }

  if (!storage) return decideOtherDevice(device, d);
  // A stick that is also, say, a network adapter (PoisonTap) answers to the class rules for its other functions too.
  const other = decideOtherDevice({ ...device, interfaceClasses: device.interfaceClasses.filter((c) => c !== USB_CLASS.massStorage) }, d);
  if (other.action === 'block') return { action: 'block', subject: 'storage', reason: 'class-blocked', clauseId: d.clause, canAsk: d.allowRequests };

  const wouldBlock = storageBlockReason(input);
  if (wouldBlock === 'inspect') return { action: 'inspect' };
  if (s.mode === 'audit')
    return { action: 'allow', subject, clauseId: s.clause, ...(wouldBlock ? { auditWouldBlock: wouldBlock } : {}), ...hardwareScheme(input) };
  if (!wouldBlock) return { action: 'allow', subject, clauseId: s.clause, ...hardwareScheme(input) };
  // Read-only is a softer block for media that is merely unencrypted or unrecognised; unreadable media cannot be trusted either way.
  const softenable = wouldBlock === 'block-all' || wouldBlock === 'unencrypted' || wouldBlock === 'unknown-encryption';
  return {
    action: s.readOnlyInsteadOfBlock && softenable ? 'readonly' : 'block',
    subject: 'storage',
    reason: wouldBlock,
    clauseId: s.clause,
    canAsk: s.allowRequests,
  };
}

function isHardwareEncryptedModel(input: UsbDecisionInput): boolean {
  return input.hardwareEncryptedModels.some((m) => m.vendorId === input.device.vendorId && m.productId === input.device.productId);
}

function hardwareScheme(input: UsbDecisionInput): { scheme?: 'hardware' } {
  return isHardwareEncryptedModel(input) ? { scheme: 'hardware' } : {};
}

/** Why a storage device would be blocked under the mode (audit judges as allow-encrypted does), `undefined` to allow, or `inspect` for the media first. */
function storageBlockReason(input: UsbDecisionInput): StorageBlockReason | undefined | 'inspect' {
  const s = input.storageSettings;
  if (s.mode === 'block-all') return 'block-all';
  // A listed hardware-encrypted model unlocks to a plain filesystem: its media says nothing useful.
  if (isHardwareEncryptedModel(input)) return undefined;
  const media = input.storage;
  if (!media) return 'inspect';
  if (media.unreadable) return input.unreadableVolume === 'block' ? 'unreadable' : undefined;
  if (media.encrypted === true) return undefined;
  if (media.encrypted === false) return 'unencrypted';
  return s.unknownEncryption === 'block' ? 'unknown-encryption' : undefined;
}

function decideOtherDevice(device: UsbDevice, d: UsbDeviceSettings): UsbDecision {
  const allowed = new Set<number>(d.allowedClasses.map((c) => USB_CLASS_NAMES[c]));
  const classes = [device.deviceClass, ...device.interfaceClasses].filter((c) => !STRUCTURAL_CLASSES.has(c) && c !== USB_CLASS.massStorage);
  const unlisted = classes.filter((c) => !allowed.has(c));
  if (unlisted.length === 0 || d.otherClasses === 'log') return { action: 'allow', subject: 'device', clauseId: d.clause };
  return { action: 'block', subject: 'device', reason: d.allowRequests ? 'needs-permission' : 'class-blocked', clauseId: d.clause, canAsk: d.allowRequests };
}
