import { InvigilatorError } from '../../shared/errors';
import type { z } from 'zod';
import type { encryptionScheme, volume } from '../../shared/protocol/events';
import type { StorageDisk } from './usb-platform';
import { type DeviceClassification, type Encrypted, DEFAULT_BYTES_PER_VOLUME, classifyDevice } from './volume-classifier';

type Volume = z.infer<typeof volume>;
type Scheme = z.infer<typeof encryptionScheme>;

/** The verdict on a storage device's media, from its own bytes and the OS's view together. */
export interface StorageAssessment {
  encrypted: Encrypted;
  /** One scheme for the event: the only one present, `none`, or `unknown` when mixed or unrecognised. */
  scheme: Scheme;
  volumes: Volume[];
  bytesRead: number;
  /** The media could not be read at all (I/O error, no disk appeared): the failsafe decides. */
  unreadable: boolean;
}

/**
 * Every data volume must be encrypted for the device to count as encrypted;
 * one plain volume makes it plain; otherwise anything unrecognised makes it
 * unknown. Where the OS says a volume is encrypted (BitLocker, APFS,
 * FileVault), it knows better than the bytes: a BitLocker To Go volume that
 * Windows has unlocked reads as plain FAT through the volume device.
 */
export async function assessStorage(disks: readonly StorageDisk[], bytesPerVolume = DEFAULT_BYTES_PER_VOLUME): Promise<StorageAssessment> {
  const volumes: Volume[] = [];
  let bytesRead = 0;
  let unreadable = disks.length === 0;
  for (const disk of disks) {
    // An extended partition's container is two sectors the kernel lists too; there is nothing in it to mount.
    const partitions = (disk.partitions ?? []).filter((p) => p.sizeBytes === undefined || p.sizeBytes > 1024);
    const byBytes: Volume[] = [];
    if (partitions.length > 0) {
      for (const p of partitions) {
        const found = await readSource(p.open, bytesPerVolume);
        if (found === 'unreadable') unreadable = true;
        else {
          bytesRead += found.bytesRead;
          byBytes.push(...bytesVolumes({ device: p.device, ...(p.sizeBytes !== undefined ? { sizeBytes: p.sizeBytes } : {}), volumes: [] }, found));
        }
      }
    } else if (disk.open) {
      const found = await readSource(disk.open, bytesPerVolume);
      if (found === 'unreadable') unreadable = true;
      else {
        bytesRead += found.bytesRead;
        byBytes.push(...bytesVolumes(disk, found));
      }
    }
    const osVolumes = disk.volumes.map((v) => ({
      device: v.device,
      encrypted: v.encrypted,
      scheme: v.scheme,
      ...(v.filesystem ? { filesystem: v.filesystem } : {}),
      ...(v.sizeBytes !== undefined ? { sizeBytes: v.sizeBytes } : {}),
    }));
    // Both views count: one plain volume by either makes the stick plain.
    volumes.push(...byBytes, ...osVolumes);
    if (!disk.open && partitions.length === 0 && disk.volumes.length === 0) unreadable = true;
  }
  if (volumes.length === 0) return { encrypted: 'unknown', scheme: 'unknown', volumes, bytesRead, unreadable: true };
  const encrypted = combine(volumes.map((v) => v.encrypted));
  const schemes = new Set(volumes.map((v) => v.scheme));
  const scheme: Scheme = schemes.size === 1 ? [...schemes][0]! : encrypted === false ? 'none' : 'unknown';
  return { encrypted, scheme, volumes: volumes.slice(0, 32), bytesRead, unreadable };
}

function combine(values: Encrypted[]): Encrypted {
  if (values.includes(false)) return false;
  if (values.every((v) => v === true)) return true;
  return 'unknown';
}

async function readSource(open: NonNullable<StorageDisk['open']>, bytesPerVolume: number): Promise<DeviceClassification | 'unreadable'> {
  let source;
  try {
    source = await open();
  } catch {
    return 'unreadable';
  }
  try {
    return await classifyDevice(source, bytesPerVolume);
  } catch (e) {
    // An empty card reader slot or a zero-length medium holds nothing to protect.
    if (e instanceof InvigilatorError && e.code === 'INV_ERR_VOLUME_TOO_SMALL')
      return { encrypted: 'unknown', scheme: 'unknown', partitions: [], bytesRead: 0 };
    return 'unreadable';
  } finally {
    await source.close().catch(() => undefined);
  }
}

function bytesVolumes(disk: StorageDisk, c: DeviceClassification): Volume[] {
  if (c.partitions.length === 0) {
    return [
      {
        device: disk.device,
        encrypted: c.encrypted,
        scheme: c.scheme === 'partitioned' ? 'unknown' : c.scheme,
        ...(c.filesystem ? { filesystem: c.filesystem } : {}),
        ...(disk.sizeBytes !== undefined ? { sizeBytes: disk.sizeBytes } : {}),
      },
    ];
  }
  return c.partitions.map((p) => ({
    device: `${disk.device}#${p.index}`,
    encrypted: p.encrypted,
    scheme: p.scheme,
    ...(p.filesystem ? { filesystem: p.filesystem } : {}),
    sizeBytes: p.sizeBytes,
  }));
}
