import { HEAD_BYTES, extensionOf, isPartialDownload, judgeFile, type FileFacts } from '../../../../agent/software/downloads/file-kind';

const bytes = (...values: Array<number | string>): Uint8Array =>
  Uint8Array.from(values.flatMap((v) => (typeof v === 'number' ? [v] : [...v].map((c) => c.charCodeAt(0)))));

/** A zip whose first entry has this name: local header (30 bytes) then the name. */
function zipFirstEntry(name: string): Uint8Array {
  const header = new Uint8Array(30);
  header.set([0x50, 0x4b, 0x03, 0x04]);
  header[26] = name.length & 0xff;
  header[27] = name.length >> 8;
  return Uint8Array.from([...header, ...bytes(name)]).subarray(0, HEAD_BYTES);
}

const TEXT = bytes('hello, this is my homework\n');
const ELF = bytes(0x7f, 'ELF', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0);
const APPIMAGE = bytes(0x7f, 'ELF', 2, 1, 1, 0, 'AI', 2, 0, 0, 0, 0, 0, 0, 0);

type Row = [string, FileFacts, false | { format: string; installer: boolean; evidence: string }];

const TABLE: Row[] = [
  // By name, case-insensitive, whatever the content.
  ['game.exe', { name: 'game.exe', head: TEXT }, { format: 'windows-program', installer: false, evidence: 'name' }],
  ['GAME.EXE', { name: 'GAME.EXE' }, { format: 'windows-program', installer: false, evidence: 'name' }],
  ['setup.msi', { name: 'setup.msi' }, { format: 'windows-installer', installer: true, evidence: 'name' }],
  ['app.msix', { name: 'app.msix' }, { format: 'windows-installer', installer: true, evidence: 'name' }],
  ['run.bat', { name: 'run.bat' }, { format: 'windows-script', installer: false, evidence: 'name' }],
  ['run.CMD', { name: 'run.CMD' }, { format: 'windows-script', installer: false, evidence: 'name' }],
  ['x.ps1', { name: 'x.ps1' }, { format: 'windows-script', installer: false, evidence: 'name' }],
  ['x.vbs', { name: 'x.vbs' }, { format: 'windows-script', installer: false, evidence: 'name' }],
  ['mc.jar', { name: 'mc.jar' }, { format: 'java-archive', installer: false, evidence: 'name' }],
  ['x.dmg', { name: 'x.dmg' }, { format: 'macos-disk-image', installer: true, evidence: 'name' }],
  ['x.pkg', { name: 'x.pkg' }, { format: 'macos-installer', installer: true, evidence: 'name' }],
  ['Game.app', { name: 'Game.app' }, { format: 'macos-app', installer: false, evidence: 'name' }],
  ['x.AppImage', { name: 'x.AppImage' }, { format: 'linux-appimage', installer: false, evidence: 'name' }],
  ['x.appimage', { name: 'x.appimage' }, { format: 'linux-appimage', installer: false, evidence: 'name' }],
  ['x.deb', { name: 'x.deb' }, { format: 'linux-package', installer: true, evidence: 'name' }],
  ['x.rpm', { name: 'x.rpm' }, { format: 'linux-package', installer: true, evidence: 'name' }],
  ['x.sh', { name: 'x.sh' }, { format: 'script', installer: false, evidence: 'name' }],
  ['screen saver x.scr', { name: 'fish.scr' }, { format: 'windows-program', installer: false, evidence: 'name' }],
  ['double extension', { name: 'homework.pdf.exe' }, { format: 'windows-program', installer: false, evidence: 'name' }],
  ['trailing dots and spaces (Windows drops them)', { name: 'game.exe. . ' }, { format: 'windows-program', installer: false, evidence: 'name' }],
  ['a name written backwards with U+202E', { name: 'photo\u202Egnp.exe' }, { format: 'windows-program', installer: false, evidence: 'name' }],
  ['an empty file named like a program still counts by name', { name: 'x.exe', size: 0 }, { format: 'windows-program', installer: false, evidence: 'name' }],
  // By content, whatever the name.
  ['MZ renamed .txt', { name: 'notes.txt', head: bytes('MZ', 0x90, 0) }, { format: 'windows-program', installer: false, evidence: 'content' }],
  ['ELF with no extension', { name: 'tool', head: ELF }, { format: 'linux-program', installer: false, evidence: 'content' }],
  ['AppImage renamed', { name: 'video.mp4', head: APPIMAGE }, { format: 'linux-appimage', installer: false, evidence: 'content' }],
  ['Mach-O 64 LE', { name: 'a', head: bytes(0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1) }, { format: 'macos-program', installer: false, evidence: 'content' }],
  ['Mach-O 32 BE', { name: 'a', head: bytes(0xfe, 0xed, 0xfa, 0xce) }, { format: 'macos-program', installer: false, evidence: 'content' }],
  [
    'Mach-O universal (2 architectures)',
    { name: 'a', head: bytes(0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2) },
    { format: 'macos-program', installer: false, evidence: 'content' },
  ],
  ['Java class file (CAFEBABE, version 52) is not a program', { name: 'A.class', head: bytes(0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52) }, false],
  ['shebang', { name: 'run', head: bytes('#!/bin/sh\necho hi\n') }, { format: 'script', installer: false, evidence: 'content' }],
  ['xar (.pkg) renamed', { name: 'a.zip', head: bytes('xar!', 0, 28) }, { format: 'macos-installer', installer: true, evidence: 'content' }],
  ['RPM lead', { name: 'a', head: bytes(0xed, 0xab, 0xee, 0xdb, 3, 0) }, { format: 'linux-package', installer: true, evidence: 'content' }],
  [
    'deb (ar with debian-binary first)',
    { name: 'a', head: bytes('!<arch>\ndebian-binary   ') },
    { format: 'linux-package', installer: true, evidence: 'content' },
  ],
  ['plain ar archive (a static library) is not', { name: 'libx.a', head: bytes('!<arch>\n/               ') }, false],
  [
    'jar renamed to .zip (META-INF first)',
    { name: 'mods.zip', head: zipFirstEntry('META-INF/MANIFEST.MF') },
    { format: 'java-archive', installer: false, evidence: 'content' },
  ],
  ['a .docx is a zip but not a program', { name: 'essay.docx', head: zipFirstEntry('[Content_Types].xml') }, false],
  ['a renamed .msix (zip, manifest not first) is not caught by content', { name: 'x.zip', head: zipFirstEntry('Assets/logo.png') }, false],
  ['OLE (.msi or old .doc) is not caught by content', { name: 'x.doc', head: bytes(0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1) }, false],
  // By the executable bit (POSIX).
  ['x bit on a text file', { name: 'runme', mode: 0o100755, size: 10, head: TEXT }, { format: 'unix-executable', installer: false, evidence: 'mode' }],
  ['x bit on an unreadable file', { name: 'runme', mode: 0o100711, size: 10 }, { format: 'unix-executable', installer: false, evidence: 'mode' }],
  ['x bit on a JPEG from a FAT stick is not', { name: 'photo', mode: 0o100777, size: 10, head: bytes(0xff, 0xd8, 0xff, 0xe0) }, false],
  ['x bit on a PDF is not', { name: 'worksheet', mode: 0o100755, size: 10, head: bytes('%PDF-1.7') }, false],
  ['x bit on an empty file is not', { name: 'empty', mode: 0o100755, size: 0, head: bytes() }, false],
  ['no x bit on text is not', { name: 'notes', mode: 0o100644, size: 10, head: TEXT }, false],
  // Ordinary files.
  ['a photo', { name: 'cat.png', head: bytes(0x89, 'PNG') }, false],
  ['a dotfile', { name: '.bashrc', head: TEXT }, false],
  ['an .exe-looking folder name in the middle', { name: 'my.exe.notes.txt', head: TEXT }, false],
  ['hostile markup in a name', { name: '<img src=x onerror=alert(1)>.txt', head: TEXT }, false],
];

describe('judgeFile', () => {
  it.each(TABLE)('%s', (_label, facts, expected) => {
    const judgement = judgeFile(facts);
    if (expected === false) expect(judgement).toEqual({ executable: false });
    else expect(judgement).toEqual({ executable: true, ...expected });
  });

  it('never needs more than HEAD_BYTES bytes', () => {
    expect(HEAD_BYTES).toBeLessThanOrEqual(64);
    for (const [, facts] of TABLE) expect((facts.head ?? new Uint8Array()).length).toBeLessThanOrEqual(HEAD_BYTES);
  });
});

describe('extensionOf and isPartialDownload', () => {
  it.each([
    ['a.EXE', '.exe'],
    ['archive.tar.gz', '.gz'],
    ['noext', ''],
    ['.profile', '.profile'],
    ['trailing.exe...', '.exe'],
  ])('extensionOf(%j) is %j', (name, ext) => expect(extensionOf(name)).toBe(ext));

  it.each(['game.exe.crdownload', 'game.exe.part', 'Setup.msi.PARTIAL', 'x.download', 'x.opdownload'])('%s is a download still in progress', (name) =>
    expect(isPartialDownload(name)).toBe(true),
  );
  it('a finished download is not', () => expect(isPartialDownload('game.exe')).toBe(false));
});
