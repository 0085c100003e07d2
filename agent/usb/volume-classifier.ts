import { InvigilatorError } from '../../shared/errors';

/**
 * Whether a USB storage volume is encrypted, decided from its own bytes: the
 * signatures at fixed offsets that LUKS, BitLocker and the plain filesystems
 * write. Content inside files never matters, because nothing is searched for:
 * every check is at the offset its format defines. Pure: it reads through a
 * ByteSource, which an OS adapter (or a test's image file) provides.
 */
export interface ByteSource {
  /** Size in bytes, when known. */
  readonly size: number;
  /** Bytes at `offset`; fewer than asked at the end of the volume. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export type Encrypted = true | false | 'unknown';
export type Scheme = 'luks1' | 'luks2' | 'bitlocker' | 'bitlocker-to-go' | 'none' | 'unknown';

export interface VolumeClassification {
  encrypted: Encrypted;
  scheme: Scheme;
  filesystem?: string;
}

export interface PartitionClassification extends VolumeClassification {
  index: number;
  table: 'mbr' | 'gpt';
  startBytes: number;
  sizeBytes: number;
}

export interface DeviceClassification {
  encrypted: Encrypted;
  /** The whole-device scheme, or `partitioned` when there is a partition table. */
  scheme: Scheme | 'partitioned';
  filesystem?: string;
  partitions: PartitionClassification[];
  bytesRead: number;
}

/** Enough for every signature we look for (ISO 9660 and UDF sit at 32 KiB), well under the budget. */
const PROBE_BYTES = 40 * 1024;
export const DEFAULT_BYTES_PER_VOLUME = 256 * 1024;
const SECTOR = 512;

const ascii = (b: Uint8Array, offset: number, length: number) => String.fromCharCode(...b.subarray(offset, offset + length));
const u16le = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);
const u16be = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const u32le = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000;
const u64le = (b: Uint8Array, o: number) => u32le(b, o) + u32le(b, o + 4) * 0x100000000;

/** A window onto part of a source, with its own read budget, so one partition cannot spend another's. */
class Budgeted implements ByteSource {
  bytesRead = 0;
  constructor(
    private readonly inner: ByteSource,
    private readonly base: number,
    readonly size: number,
    private readonly budget: number,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    const len = Math.max(0, Math.min(length, this.size - offset));
    if (this.bytesRead + len > this.budget) throw new InvigilatorError('INV_ERR_VOLUME_UNREADABLE', `classification would read more than ${this.budget} bytes`);
    this.bytesRead += len;
    return len === 0 ? new Uint8Array(0) : this.inner.read(this.base + offset, len);
  }
}

const MBR_TYPES_WITHOUT_DATA = new Set([0x00, 0x05, 0x0f, 0x85, 0xee]);
const GPT_TYPES_WITHOUT_DATA = new Set([
  'e3c9e316-0b5c-4db8-817d-f92df00215ae', // Microsoft reserved
  '21686148-6449-6e6f-744e-656564454649', // BIOS boot
]);

export async function classifyDevice(source: ByteSource, bytesPerVolume = DEFAULT_BYTES_PER_VOLUME): Promise<DeviceClassification> {
  if (source.size < SECTOR) throw new InvigilatorError('INV_ERR_VOLUME_TOO_SMALL', `${source.size} bytes; a volume has at least ${SECTOR}`);
  const whole = new Budgeted(source, 0, source.size, bytesPerVolume);
  const head = await whole.read(0, PROBE_BYTES);
  const own = await classifyVolumeBytes(head, whole);
  if (own) return { ...own, partitions: [], bytesRead: whole.bytesRead };

  const table = readPartitionTable(head, source.size);
  if (!table) return { encrypted: 'unknown', scheme: 'unknown', partitions: [], bytesRead: whole.bytesRead };
  let bytesRead = whole.bytesRead;
  const partitions: PartitionClassification[] = [];
  for (const p of table.partitions) {
    const view = new Budgeted(source, p.startBytes, Math.min(p.sizeBytes, source.size - p.startBytes), bytesPerVolume);
    const found = view.size >= SECTOR ? await classifyVolumeBytes(await view.read(0, PROBE_BYTES), view) : undefined;
    bytesRead += view.bytesRead;
    partitions.push({
      index: p.index,
      table: table.kind,
      startBytes: p.startBytes,
      sizeBytes: p.sizeBytes,
      ...(found ?? { encrypted: 'unknown', scheme: 'unknown' }),
    });
  }
  return { encrypted: combine(partitions.map((p) => p.encrypted)), scheme: 'partitioned', partitions, bytesRead };
}

/** A partitioned stick counts as encrypted only if every data partition is; one plain partition makes it plain. */
function combine(values: Encrypted[]): Encrypted {
  if (values.length === 0) return 'unknown';
  if (values.includes(false)) return false;
  return values.every((v) => v === true) ? true : 'unknown';
}

/** The volume's own signature, or undefined when it has none (it may then hold a partition table). */
async function classifyVolumeBytes(b: Uint8Array, source: Budgeted): Promise<VolumeClassification | undefined> {
  // LUKS: "LUKS\xba\xbe" then a big-endian version.
  if (b.length >= 8 && ascii(b, 0, 4) === 'LUKS' && b[4] === 0xba && b[5] === 0xbe) {
    const version = u16be(b, 6);
    if (version === 1) return { encrypted: true, scheme: 'luks1' };
    if (version === 2) return { encrypted: true, scheme: 'luks2' };
    return { encrypted: 'unknown', scheme: 'unknown' };
  }
  const bitlocker = await bitlockerKind(b, source);
  if (bitlocker) return { encrypted: true, scheme: bitlocker };
  const fs = filesystemOf(b);
  if (fs) return { encrypted: false, scheme: 'none', filesystem: fs };
  return undefined;
}

/**
 * BitLocker's three boot-sector signatures. Windows 7+ and To Go also point to
 * FVE metadata that must say "-FVE-FS-": To Go's boot sector is otherwise a
 * FAT32 boot sector, and must not be taken for a plain stick.
 */
async function bitlockerKind(b: Uint8Array, source: Budgeted): Promise<'bitlocker' | 'bitlocker-to-go' | undefined> {
  if (b.length < SECTOR || b[0] !== 0xeb || b[2] !== 0x90) return undefined;
  const oem = ascii(b, 3, 8);
  if (b[1] === 0x52 && oem === '-FVE-FS-') return 'bitlocker'; // Vista
  let metadataOffset: number;
  let kind: 'bitlocker' | 'bitlocker-to-go';
  if (b[1] === 0x58 && oem === '-FVE-FS-') {
    metadataOffset = u64le(b, 176);
    kind = 'bitlocker';
  } else if (b[1] === 0x58 && oem === 'MSWIN4.1') {
    metadataOffset = u64le(b, 440);
    kind = 'bitlocker-to-go';
  } else return undefined;
  if (metadataOffset === 0 || metadataOffset + 8 > source.size) return undefined;
  const fve = metadataOffset + 8 <= b.length ? b.subarray(metadataOffset, metadataOffset + 8) : await source.read(metadataOffset, 8);
  return ascii(fve, 0, 8) === '-FVE-FS-' ? kind : undefined;
}

function filesystemOf(b: Uint8Array): string | undefined {
  if (b.length >= SECTOR) {
    const oem = ascii(b, 3, 8);
    if (oem === 'EXFAT   ') return 'exfat';
    if (oem === 'NTFS    ') return 'ntfs';
    if (isFatBootSector(b)) {
      if (ascii(b, 82, 5) === 'FAT32') return 'vfat';
      const label = ascii(b, 54, 5);
      if (label === 'FAT12' || label === 'FAT16') return 'vfat';
      return 'vfat';
    }
  }
  if (b.length >= 1082 && u16le(b, 1080) === 0xef53) return 'ext';
  if (b.length >= 1026 && (ascii(b, 1024, 2) === 'H+' || ascii(b, 1024, 2) === 'HX')) return 'hfsplus';
  if (b.length >= 36 && ascii(b, 32, 4) === 'NXSB') return 'apfs';
  if (b.length >= 32774 && ascii(b, 32769, 5) === 'CD001') return 'iso9660';
  for (let o = 32769; o + 5 <= b.length; o += 2048) {
    const id = ascii(b, o, 5);
    if (id === 'NSR02' || id === 'NSR03') return 'udf';
  }
  return undefined;
}

/** A FAT boot sector: a jump, a sane bytes-per-sector and sectors-per-cluster, at least one FAT, and the 0x55AA mark. */
function isFatBootSector(b: Uint8Array): boolean {
  const jump = (b[0] === 0xeb && b[2] === 0x90) || b[0] === 0xe9;
  const bytesPerSector = u16le(b, 11);
  const sectorsPerCluster = b[13]!;
  const fats = b[16]!;
  return (
    jump &&
    [512, 1024, 2048, 4096].includes(bytesPerSector) &&
    sectorsPerCluster > 0 &&
    (sectorsPerCluster & (sectorsPerCluster - 1)) === 0 &&
    fats >= 1 &&
    fats <= 2 &&
    b[510] === 0x55 &&
    b[511] === 0xaa
  );
}

interface TableEntry {
  index: number;
  startBytes: number;
  sizeBytes: number;
}

function readPartitionTable(b: Uint8Array, deviceSize: number): { kind: 'mbr' | 'gpt'; partitions: TableEntry[] } | undefined {
  if (b.length >= 2 * SECTOR && ascii(b, SECTOR, 8) === 'EFI PART') {
    const entriesLba = u64le(b, SECTOR + 72);
    const count = u32le(b, SECTOR + 80);
    const entrySize = u32le(b, SECTOR + 84);
    const partitions: TableEntry[] = [];
    if (entrySize >= 128 && entrySize <= 1024 && count <= 256) {
      for (let i = 0; i < count; i++) {
        const o = entriesLba * SECTOR + i * entrySize;
        if (o + 128 > b.length) break;
        const type = guid(b, o);
        if (type === '00000000-0000-0000-0000-000000000000' || GPT_TYPES_WITHOUT_DATA.has(type)) continue;
        const first = u64le(b, o + 32);
        const last = u64le(b, o + 40);
        if (last < first || first * SECTOR >= deviceSize) continue;
        partitions.push({ index: i + 1, startBytes: first * SECTOR, sizeBytes: (last - first + 1) * SECTOR });
      }
    }
    return { kind: 'gpt', partitions };
  }
  if (b.length >= SECTOR && b[510] === 0x55 && b[511] === 0xaa) {
    const partitions: TableEntry[] = [];
    let valid = true;
    for (let i = 0; i < 4; i++) {
      const o = 446 + i * 16;
      const status = b[o]!;
      const type = b[o + 4]!;
      if (status !== 0x00 && status !== 0x80) valid = false;
      if (MBR_TYPES_WITHOUT_DATA.has(type)) continue;
      const start = u32le(b, o + 8);
      const sectors = u32le(b, o + 12);
      if (sectors === 0 || start * SECTOR >= deviceSize) continue;
      partitions.push({ index: i + 1, startBytes: start * SECTOR, sizeBytes: sectors * SECTOR });
    }
    if (valid && partitions.length > 0) return { kind: 'mbr', partitions };
  }
  return undefined;
}

function guid(b: Uint8Array, o: number): string {
  const hex = (from: number, to: number, reverse: boolean) => {
    const bytes = Array.from(b.subarray(o + from, o + to));
    return (reverse ? bytes.reverse() : bytes).map((x) => x.toString(16).padStart(2, '0')).join('');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`;
}
