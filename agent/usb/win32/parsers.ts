import { z } from 'zod';
import { InvigilatorError } from '../../../shared/errors';
import { descriptorText, hex4 } from '../../../shared/usb/descriptor-text';
import type { ObservedUsbDevice, OsVolumeView, StorageDisk } from '../usb-platform';
import { asList } from '../../os/win32/ps-text';
import { isUsbInstanceId } from './instance-id';

/**
 * Parsers for what the scripts in scripts.ts print. Everything printed is
 * untrusted: device strings come from whoever built the device, and a
 * PowerShell or WMI fault can print anything. Each parser either returns
 * validated values or throws INV_ERR_USB_OS_OUTPUT_INVALID.
 */

const MAX_ROWS = 1024;

function invalid(detail: string): InvigilatorError {
  return new InvigilatorError('INV_ERR_USB_OS_OUTPUT_INVALID', detail);
}

/** JSON from ConvertTo-Json; no output at all is what it prints for an empty pipeline. */
export function parseJsonOutput(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    throw invalid('not JSON');
  }
}

const listOf = <T extends z.ZodType>(item: T) => z.preprocess((v) => asList(v), z.array(item).max(MAX_ROWS));
const optionalText = z.string().max(65536).nullish();
const stringList = z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(z.string().max(1024)).max(64)).nullish();

const pnpRow = z.object({
  PNPDeviceID: z.string().max(1024),
  Name: optionalText,
  Manufacturer: optionalText,
  ConfigManagerErrorCode: z.number().int().nullish(),
  CompatibleID: stringList,
  HardwareID: stringList,
  BusReportedDeviceDesc: optionalText,
  Parent: z.string().max(1024).nullish(),
});
export type PnpRow = z.infer<typeof pnpRow>;

/** The parts of `USB\VID_0781&PID_5567\4C530001230101110453` or `USB\VID_046D&PID_C31C&MI_00\6&2C8F1F2E&0&0000`. */
export interface UsbInstanceId {
  vendorId: string;
  productId: string;
  /** The interface number of one function of a composite device. */
  interfaceNumber?: number;
  /** The last segment, when it is the device's serial number: Windows generates ids containing '&' for devices without one. */
  serial?: string;
}

export function parseUsbInstanceId(id: string): UsbInstanceId | undefined {
  const m = /^USB\\VID_([0-9A-F]{4})&PID_([0-9A-F]{4})(?:&MI_([0-9A-F]{2}))?\\([^\\]+)$/i.exec(id);
  if (!m) return undefined;
  const vendorId = hex4(m[1]);
  const productId = hex4(m[2]);
  if (!vendorId || !productId) return undefined;
  const last = m[4] ?? '';
  const serial = m[3] === undefined && !last.includes('&') ? descriptorText(last) : undefined;
  return { vendorId, productId, ...(m[3] !== undefined ? { interfaceNumber: parseInt(m[3], 16) } : {}), ...(serial ? { serial } : {}) };
}

/** USB\DevClass_xx is the device descriptor's class; USB\Class_xx an interface's (usbstor.inf and usb.inf name them so). */
export function classesFrom(compatibleIds: readonly string[]): { deviceClass?: number; interfaceClasses: number[] } {
  let deviceClass: number | undefined;
  const interfaceClasses: number[] = [];
  for (const id of compatibleIds) {
    const dev = /^USB\\DevClass_([0-9A-F]{2})(?:&|$)/i.exec(id);
    if (dev?.[1]) deviceClass ??= parseInt(dev[1], 16);
    const cls = /^USB\\Class_([0-9A-F]{2})(?:&|$)/i.exec(id);
    if (cls?.[1]) {
      const n = parseInt(cls[1], 16);
      if (!interfaceClasses.includes(n)) interfaceClasses.push(n);
    }
  }
  return { ...(deviceClass !== undefined ? { deviceClass } : {}), interfaceClasses };
}

export function parsePnpRows(text: string): PnpRow[] {
  const parsed = listOf(pnpRow).safeParse(parseJsonOutput(text));
  if (!parsed.success) throw invalid(`device list: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/**
 * One ObservedUsbDevice per USB device node. A composite device (a keyboard
 * with a media-key interface) shows as the device node plus one node per
 * function (&MI_xx); the functions' classes are folded into the device, found
 * through DEVPKEY_Device_Parent, or by vendor and product when the parent is
 * not known and only one such device is attached. The device node's id is the
 * key: disabling it disables every function.
 */
export function devicesFromRows(rows: readonly PnpRow[]): ObservedUsbDevice[] {
  const devices = new Map<string, ObservedUsbDevice>();
  const functions: { row: PnpRow; id: UsbInstanceId }[] = [];
  for (const row of rows) {
    if (!isUsbInstanceId(row.PNPDeviceID)) continue;
    const id = parseUsbInstanceId(row.PNPDeviceID);
    if (!id) continue;
    if (id.interfaceNumber !== undefined) {
      functions.push({ row, id });
      continue;
    }
    const classes = classesFrom(row.CompatibleID ?? []);
    const manufacturer = descriptorText(row.Manufacturer);
    const product = descriptorText(row.BusReportedDeviceDesc) ?? descriptorText(row.Name);
    devices.set(row.PNPDeviceID.toUpperCase(), {
      key: row.PNPDeviceID,
      vendorId: id.vendorId,
      productId: id.productId,
      ...(id.serial ? { serial: id.serial } : {}),
      ...(manufacturer ? { manufacturer } : {}),
      ...(product ? { product } : {}),
      deviceClass: classes.deviceClass ?? 0,
      interfaceClasses: classes.interfaceClasses.slice(0, 64),
    });
  }
  for (const { row, id } of functions) {
    let parent = row.Parent ? devices.get(row.Parent.toUpperCase()) : undefined;
    if (!parent) {
      const candidates = [...devices.values()].filter((d) => d.vendorId === id.vendorId && d.productId === id.productId);
      parent = candidates.length === 1 ? candidates[0] : undefined;
    }
    if (!parent) continue;
    for (const cls of classesFrom(row.CompatibleID ?? []).interfaceClasses) {
      if (!parent.interfaceClasses.includes(cls) && parent.interfaceClasses.length < 64) parent.interfaceClasses.push(cls);
    }
  }
  return [...devices.values()];
}

export function parseDeviceList(text: string): ObservedUsbDevice[] {
  return devicesFromRows(parsePnpRows(text));
}

const encryption = z.object({
  ProtectionStatus: z.number().int().nullish(),
  ConversionStatus: z.number().int().nullish(),
  EncryptionMethod: z.number().int().nullish(),
  VolumeType: z.number().int().nullish(),
});
type Encryption = z.infer<typeof encryption>;

const volumeRow = z.object({
  DeviceID: z.string().min(1).max(256),
  FileSystem: z.string().max(64).nullish(),
  Size: z.number().nonnegative().nullish(),
  DriveType: z.number().int().nullish(),
  Encryption: encryption.nullish(),
});

const diskRow = z.object({
  Index: z.number().int().min(0).max(65535),
  Model: optionalText,
  Size: z.number().nonnegative().nullish(),
  PNPDeviceID: z.string().max(1024).nullish(),
  volumes: listOf(volumeRow),
});

const storageOutput = z.object({ present: z.boolean(), disks: listOf(diskRow) });

/** Win32_LogicalDisk.DriveType 2: removable disk. Win32_EncryptableVolume.VolumeType 2: portable data volume. */
const DRIVE_REMOVABLE = 2;
const VOLUME_PORTABLE = 2;

/**
 * BitLocker's view of a volume (Win32_EncryptableVolume, documented values):
 * ConversionStatus 0 fully decrypted, 1 fully encrypted, 2–5 converting or
 * paused; ProtectionStatus 0 off, 1 on, 2 unknown (the volume is locked).
 * A fully encrypted volume with protection off has its key in the clear on
 * the volume (suspended), so it does not count as encrypted.
 */
export function volumeEncryption(e: Encryption | null | undefined, driveType: number | null | undefined): Pick<OsVolumeView, 'encrypted' | 'scheme'> {
  if (!e) return { encrypted: 'unknown', scheme: 'unknown' };
  const locked = e.ProtectionStatus === 2;
  if (locked || (e.ConversionStatus === 1 && e.ProtectionStatus === 1)) {
    return { encrypted: true, scheme: e.VolumeType === VOLUME_PORTABLE || driveType === DRIVE_REMOVABLE ? 'bitlocker-to-go' : 'bitlocker' };
  }
  if (e.ConversionStatus === 0 && e.ProtectionStatus === 0) return { encrypted: false, scheme: 'none' };
  return { encrypted: 'unknown', scheme: 'unknown' };
}

export interface ParsedStorage {
  present: boolean;
  disks: StorageDisk[];
}

export function parseStorage(text: string): ParsedStorage {
  const parsed = storageOutput.safeParse(parseJsonOutput(text));
  if (!parsed.success) throw invalid(`storage: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return {
    present: parsed.data.present,
    disks: parsed.data.disks.map((d) => ({
      device: `\\\\.\\PHYSICALDRIVE${d.Index}`,
      ...(d.Size !== null && d.Size !== undefined ? { sizeBytes: Math.trunc(d.Size) } : {}),
      volumes: d.volumes.slice(0, 32).map((v) => {
        const filesystem = descriptorText(v.FileSystem, 32);
        return {
          device: descriptorText(v.DeviceID, 126) ?? '?',
          ...(filesystem ? { filesystem } : {}),
          ...volumeEncryption(v.Encryption, v.DriveType),
          ...(v.Size !== null && v.Size !== undefined ? { sizeBytes: Math.trunc(v.Size) } : {}),
        };
      }),
    })),
  };
}

const actionOutput = z.union([z.object({ gone: z.literal(true) }), z.object({ done: z.literal(true), enabled: z.boolean().optional() })]);

/** An action script's last line: done, or the device had gone when it ran. */
export function parseActionResult(text: string): 'done' | 'gone' {
  const parsed = actionOutput.safeParse(parseJsonOutput(text.trim().split(/\r?\n/).pop() ?? ''));
  if (!parsed.success) throw invalid('action result');
  return 'gone' in parsed.data ? 'gone' : 'done';
}
