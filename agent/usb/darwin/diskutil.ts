import type { OsVolumeView } from '../usb-platform';
import { DISK_OR_SLICE } from './ioreg';
import { type PlistDict, bool, dicts, int, parsePlistDict, str } from '../../os/darwin/plist';

/**
 * Readers for `diskutil list -plist diskN`, `diskutil info -plist diskNsM`
 * and `diskutil apfs list -plist`, and the one place that turns what they say
 * into the OS's view of each volume.
 */
export const DISKUTIL_FILE = '/usr/sbin/diskutil';

export interface Partition {
  device: string;
  content?: string;
  sizeBytes?: number;
}

export interface DiskInfo {
  device: string;
  sizeBytes?: number;
  busProtocol?: string;
  filesystemType?: string;
  coreStorageEncrypted?: boolean;
}

export interface ApfsVolume {
  device: string;
  encryption: boolean;
  fileVault: boolean;
  locked: boolean;
  roles: string[];
  sizeBytes?: number;
}

export interface ApfsContainer {
  reference?: string;
  physicalStores: string[];
  volumes: ApfsVolume[];
}

/** Partitions that hold no user data: a FAT EFI system partition on an encrypted stick must not make it look plain. */
const SYSTEM_CONTENT = new Set(['EFI', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'Apple_Boot', 'Apple_APFS_ISC', 'Apple_APFS_Recovery', 'Apple_partition_map']);
const APFS_CONTENT = new Set(['Apple_APFS', '7C3457EF-0000-11AA-AA11-00306543ECAC']);

/** diskutil's FilesystemType, in the names the byte classifier uses for the same formats. */
const FILESYSTEMS: ReadonlyMap<string, string> = new Map([
  ['msdos', 'vfat'],
  ['exfat', 'exfat'],
  ['ntfs', 'ntfs'],
  ['hfs', 'hfsplus'],
  ['apfs', 'apfs'],
  ['udf', 'udf'],
  ['cd9660', 'iso9660'],
]);

function identifier(dict: PlistDict): string | undefined {
  const id = str(dict, 'DeviceIdentifier');
  return id !== undefined && DISK_OR_SLICE.test(id) ? id : undefined;
}

/** The partitions of one whole disk; a disk formatted without a partition table is its own single volume. */
export function parseDiskList(text: string, whole: string): Partition[] {
  const entry = dicts(parsePlistDict(text), 'AllDisksAndPartitions').find((d) => identifier(d) === whole);
  if (!entry) return [];
  const partitions = dicts(entry, 'Partitions');
  const source = partitions.length > 0 ? partitions : [entry];
  const result: Partition[] = [];
  for (const p of source) {
    const device = identifier(p);
    if (device === undefined) continue;
    const content = str(p, 'Content');
    const sizeBytes = int(p, 'Size');
    result.push({ device, ...(content !== undefined ? { content } : {}), ...(sizeBytes !== undefined ? { sizeBytes } : {}) });
  }
  return result;
}

export function parseDiskInfo(text: string): DiskInfo | undefined {
  const dict = parsePlistDict(text);
  const device = identifier(dict);
  if (device === undefined) return undefined;
  const sizeBytes = int(dict, 'TotalSize') ?? int(dict, 'Size');
  const busProtocol = str(dict, 'BusProtocol');
  const filesystemType = str(dict, 'FilesystemType');
  const coreStorageEncrypted = bool(dict, 'CoreStorageEncrypted');
  return {
    device,
    ...(sizeBytes !== undefined ? { sizeBytes } : {}),
    ...(busProtocol !== undefined ? { busProtocol } : {}),
    ...(filesystemType !== undefined ? { filesystemType } : {}),
    ...(coreStorageEncrypted !== undefined ? { coreStorageEncrypted } : {}),
  };
}

export function parseApfsList(text: string): ApfsContainer[] {
  return dicts(parsePlistDict(text), 'Containers').map((c) => {
    const reference = str(c, 'ContainerReference');
    const stores = dicts(c, 'PhysicalStores')
      .map(identifier)
      .filter((s): s is string => s !== undefined);
    const designated = str(c, 'DesignatedPhysicalStore');
    if (designated !== undefined && DISK_OR_SLICE.test(designated) && !stores.includes(designated)) stores.push(designated);
    const volumes: ApfsVolume[] = [];
    for (const v of dicts(c, 'Volumes')) {
      const device = identifier(v);
      if (device === undefined) continue;
      const rolesValue = v.get('Roles');
      const roles = Array.isArray(rolesValue) ? rolesValue.filter((r): r is string => typeof r === 'string') : [];
      const sizeBytes = int(v, 'CapacityInUse');
      volumes.push({
        device,
        encryption: bool(v, 'Encryption') === true,
        fileVault: bool(v, 'FileVault') === true,
        locked: bool(v, 'Locked') === true,
        roles,
        ...(sizeBytes !== undefined ? { sizeBytes } : {}),
      });
    }
    return { ...(reference !== undefined && DISK_OR_SLICE.test(reference) ? { reference } : {}), physicalStores: stores, volumes };
  });
}

export function isSystemPartition(p: Partition): boolean {
  return p.content !== undefined && SYSTEM_CONTENT.has(p.content);
}

/** By partition type alone, so that a FAT stick never costs an `apfs list`. */
export function isApfsPartition(p: Partition): boolean {
  return p.content !== undefined && APFS_CONTENT.has(p.content);
}

/**
 * An APFS volume as the OS sees it. diskutil says FileVault for any volume
 * with a passphrase, which is every "APFS (Encrypted)" stick; the scheme says
 * `filevault` only for a Mac's own system or data volume carried over USB,
 * and `apfs-encrypted` for the rest. A volume with Encryption but no
 * FileVault (a T2 Mac's internal disk) is encrypted with a key the Mac keeps,
 * which protects nothing once the stick leaves it: unknown, not encrypted.
 */
export function apfsVolumeView(v: ApfsVolume): OsVolumeView {
  const base = { device: v.device, filesystem: 'apfs', ...(v.sizeBytes !== undefined ? { sizeBytes: v.sizeBytes } : {}) };
  if (v.fileVault || v.locked) {
    const system = v.roles.includes('System') || v.roles.includes('Data');
    return { ...base, encrypted: true, scheme: system ? 'filevault' : 'apfs-encrypted' };
  }
  if (v.encryption) return { ...base, encrypted: 'unknown', scheme: 'unknown' };
  return { ...base, encrypted: false, scheme: 'none' };
}

/** A non-APFS partition from its `diskutil info`: a known filesystem is plain; CoreStorage with encryption is legacy FileVault. */
export function partitionVolumeView(p: Partition, info: DiskInfo | undefined): OsVolumeView {
  const sizeBytes = info?.sizeBytes ?? p.sizeBytes;
  const base = { device: p.device, ...(sizeBytes !== undefined ? { sizeBytes } : {}) };
  if (info?.coreStorageEncrypted === true) return { ...base, encrypted: true, scheme: 'filevault' };
  const type = info?.filesystemType?.toLowerCase();
  const filesystem = type === undefined ? undefined : (FILESYSTEMS.get(type) ?? (/^[a-z0-9]{1,16}$/.test(type) ? type : undefined));
  // No filesystem macOS can read (BitLocker, LUKS, VeraCrypt, raw): the OS cannot say, so neither do we.
  if (filesystem === undefined) return { ...base, encrypted: 'unknown', scheme: 'unknown' };
  return { ...base, filesystem, encrypted: false, scheme: 'none' };
}
