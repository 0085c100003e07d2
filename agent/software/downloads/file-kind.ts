/**
 * Is this file a program or an installer? A pure judgement from what a
 * watcher can learn cheaply: the file's name, its POSIX executable bits, and
 * its first {@link HEAD_BYTES} bytes. Nothing else of the file is read.
 *
 * Decisions (documented in docs/architecture.md, "Software control: files and
 * quarantine"):
 *
 * - **By name** (case-insensitive, after the trailing dots and spaces Windows
 *   strips): the extensions in {@link EXECUTABLE_EXTENSIONS}. Besides the
 *   brief's list, `.scr` (screen savers, which Carrington's policy names),
 *   `.com`, `.appx`, `.appxbundle`, `.msixbundle` and `.msp` are included:
 *   Windows runs or installs each of them on a double-click.
 * - **By content**, for renamed files: `MZ` (Windows and DOS programs,
 *   DLLs), ELF (Linux programs; an AppImage is ELF), Mach-O thin and
 *   universal (macOS programs; `CAFEBABE` is a universal binary only when
 *   the architecture count that follows is small, otherwise it is a Java
 *   class file, which is not flagged), `#!` (scripts), `xar!` (macOS `.pkg`),
 *   RPM's lead, and an `ar` archive whose first member is `debian-binary`
 *   (a `.deb`). A zip archive is flagged only when its first entry is under
 *   `META-INF/` (a renamed `.jar`): `.docx`, `.xlsx` and `.odt` are zips
 *   too, and an MSIX's manifest is not at the front, so a renamed `.msix` is
 *   caught only by name. OLE files (`.msi`, but also old `.doc` and `.xls`)
 *   and disk images (whose `koly` trailer is at the end) are caught only by
 *   name for the same reason.
 * - **By the executable bit** (POSIX only): a regular, non-empty file with
 *   any `x` bit is flagged, because a shell runs even a text file with that
 *   bit, unless its first bytes show a known data format (pictures, PDF,
 *   sound, video, office documents, archives): files copied from a FAT
 *   memory stick often carry `x` on everything.
 */

/** How many bytes of a file the judge may look at. */
export const HEAD_BYTES = 64;

export type ExecutableFormat =
  | 'windows-program'
  | 'windows-installer'
  | 'windows-script'
  | 'java-archive'
  | 'macos-program'
  | 'macos-app'
  | 'macos-disk-image'
  | 'macos-installer'
  | 'linux-program'
  | 'linux-appimage'
  | 'linux-package'
  | 'script'
  | 'unix-executable';

export type Evidence = 'name' | 'content' | 'mode';

export type FileJudgement = { executable: false } | { executable: true; format: ExecutableFormat; installer: boolean; evidence: Evidence };

/** Lower-case extensions (with the dot) and what each one is. */
export const EXECUTABLE_EXTENSIONS: Readonly<Record<string, ExecutableFormat>> = {
  '.exe': 'windows-program',
  '.com': 'windows-program',
  '.scr': 'windows-program',
  '.msi': 'windows-installer',
  '.msp': 'windows-installer',
  '.msix': 'windows-installer',
  '.msixbundle': 'windows-installer',
  '.appx': 'windows-installer',
  '.appxbundle': 'windows-installer',
  '.bat': 'windows-script',
  '.cmd': 'windows-script',
  '.ps1': 'windows-script',
  '.vbs': 'windows-script',
  '.jar': 'java-archive',
  '.dmg': 'macos-disk-image',
  '.pkg': 'macos-installer',
  '.app': 'macos-app',
  '.appimage': 'linux-appimage',
  '.deb': 'linux-package',
  '.rpm': 'linux-package',
  '.sh': 'script',
};

const INSTALLER_FORMATS: ReadonlySet<ExecutableFormat> = new Set(['windows-installer', 'macos-disk-image', 'macos-installer', 'linux-package']);

export interface FileFacts {
  /** The file's own name (the last path component). */
  name: string;
  /** POSIX permission bits; undefined on Windows, where there are none. */
  mode?: number;
  /** Size in bytes, when known. */
  size?: number;
  /** The first bytes of the file (at most {@link HEAD_BYTES}); undefined when it could not be read. */
  head?: Uint8Array;
}

/** The extension the OS would act on: lower case, after dropping the trailing dots and spaces Windows ignores. */
export function extensionOf(name: string): string {
  const trimmed = name.replace(/[. ]+$/u, '');
  const dot = trimmed.lastIndexOf('.');
  return dot < 0 ? '' : trimmed.slice(dot).toLowerCase();
}

function startsWith(head: Uint8Array, bytes: readonly number[], at = 0): boolean {
  if (head.length < at + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (head[at + i] !== bytes[i]) return false;
  return true;
}

function ascii(text: string): number[] {
  return [...text].map((c) => c.charCodeAt(0));
}

/** What the first bytes say, if they name a program or installer format. */
export function formatFromContent(head: Uint8Array): ExecutableFormat | undefined {
  if (startsWith(head, [0x4d, 0x5a])) return 'windows-program';
  if (startsWith(head, [0x7f, 0x45, 0x4c, 0x46])) {
    // Type-2 AppImages carry `AI\x02` in the ELF header's padding.
    return startsWith(head, [0x41, 0x49, 0x02], 8) ? 'linux-appimage' : 'linux-program';
  }
  for (const magic of [
    [0xfe, 0xed, 0xfa, 0xce],
    [0xce, 0xfa, 0xed, 0xfe],
    [0xfe, 0xed, 0xfa, 0xcf],
    [0xcf, 0xfa, 0xed, 0xfe],
  ]) {
    if (startsWith(head, magic)) return 'macos-program';
  }
  if (startsWith(head, [0xca, 0xfe, 0xba, 0xbe]) && head.length >= 8) {
    // A universal binary's architecture count, or a Java class's version (45 and up).
    const count = ((head[4]! << 24) | (head[5]! << 16) | (head[6]! << 8) | head[7]!) >>> 0;
    if (count > 0 && count < 40) return 'macos-program';
    return undefined;
  }
  if (startsWith(head, [0x23, 0x21])) return 'script';
  if (startsWith(head, ascii('xar!'))) return 'macos-installer';
  if (startsWith(head, [0xed, 0xab, 0xee, 0xdb])) return 'linux-package';
  if (startsWith(head, ascii('!<arch>\ndebian-binary'))) return 'linux-package';
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04]) && head.length >= 30) {
    const nameLength = head[26]! | (head[27]! << 8);
    const first = String.fromCharCode(...head.subarray(30, 30 + Math.min(nameLength, head.length - 30)));
    if (first.startsWith('META-INF/')) return 'java-archive';
  }
  return undefined;
}

/** First bytes of formats that hold data, not programs: an `x` bit on these means nothing. */
const DATA_MAGICS: ReadonlyArray<{ at: number; bytes: readonly number[] }> = [
  { at: 0, bytes: [0x89, 0x50, 0x4e, 0x47] }, // PNG
  { at: 0, bytes: [0xff, 0xd8, 0xff] }, // JPEG
  { at: 0, bytes: ascii('GIF8') },
  { at: 0, bytes: ascii('%PDF') },
  { at: 0, bytes: ascii('%!PS') },
  { at: 0, bytes: [0x50, 0x4b, 0x03, 0x04] }, // zip: office documents, archives (a jar was caught above)
  { at: 0, bytes: [0x50, 0x4b, 0x05, 0x06] }, // empty zip
  { at: 0, bytes: [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1] }, // OLE: old office documents
  { at: 0, bytes: ascii('ID3') }, // MP3
  { at: 0, bytes: ascii('RIFF') }, // WAV, AVI, WebP
  { at: 0, bytes: ascii('OggS') },
  { at: 0, bytes: ascii('fLaC') },
  { at: 0, bytes: [0x1a, 0x45, 0xdf, 0xa3] }, // Matroska, WebM
  { at: 4, bytes: ascii('ftyp') }, // MP4, MOV, HEIC
  { at: 0, bytes: [0x1f, 0x8b] }, // gzip
  { at: 0, bytes: ascii('7z') },
  { at: 0, bytes: ascii('Rar!') },
  { at: 0, bytes: ascii('II*\0') }, // TIFF
  { at: 0, bytes: ascii('MM\0*') },
  { at: 0, bytes: ascii('BM') }, // BMP
];

function isKnownData(head: Uint8Array): boolean {
  return DATA_MAGICS.some((m) => startsWith(head, m.bytes, m.at));
}

/** Judges one file from its name, mode and first bytes. Never throws. */
export function judgeFile(facts: FileFacts): FileJudgement {
  const yes = (format: ExecutableFormat, evidence: Evidence): FileJudgement => ({
    executable: true,
    format,
    installer: INSTALLER_FORMATS.has(format),
    evidence,
  });
  const byName = EXECUTABLE_EXTENSIONS[extensionOf(facts.name)];
  if (byName) return yes(byName, 'name');
  if (facts.size === 0) return { executable: false };
  const byContent = facts.head ? formatFromContent(facts.head) : undefined;
  if (byContent) return yes(byContent, 'content');
  const executableBit = facts.mode !== undefined && (facts.mode & 0o111) !== 0;
  if (executableBit && !(facts.head && isKnownData(facts.head))) return yes('unix-executable', 'mode');
  return { executable: false };
}

/** Browsers' names for a download still in progress: judged when renamed to the final name. */
const PARTIAL_DOWNLOAD = /\.(crdownload|part|partial|download|opdownload)$/i;

export function isPartialDownload(name: string): boolean {
  return PARTIAL_DOWNLOAD.test(name);
}
