import { writeFileSync } from 'node:fs';
import { FileByteSource } from '../../agent/usb/file-byte-source';
import { type DeviceClassification, classifyDevice } from '../../agent/usb/volume-classifier';
import { InvigilatorError } from '../../shared/errors';
import { runCli, tempDir } from '../support/cli';
import { ImageMaker, missingImageTools } from '../support/disk-images';

const CI = process.env.CI === 'true';
const canRun = missingImageTools.length === 0;
if (!canRun && !CI)
  process.stdout.write(
    `volume-classifier: skipping the disk image tests: missing ${missingImageTools.join(', ')} (apt-get install dosfstools exfatprogs e2fsprogs ntfs-3g cryptsetup-bin fdisk mtools)\n`,
  );
const describeImages = canRun || CI ? describe : describe.skip;

async function classify(path: string): Promise<DeviceClassification> {
  const source = await FileByteSource.open(path);
  try {
    return await classifyDevice(source);
  } finally {
    await source.close();
  }
}

describeImages('classifying USB volumes from their own bytes (images made by the real tools)', () => {
  const make = new ImageMaker(tempDir('images'));

  it('has every tool it needs (CI installs them)', () => {
    expect(missingImageTools).toEqual([]);
  });

  it.each([
    ['FAT32', () => make.fat('fat32.img', 40, 32), 'vfat'],
    ['FAT16', () => make.fat('fat16.img', 16, 16), 'vfat'],
    ['exFAT', () => make.exfat('exfat.img'), 'exfat'],
    ['ext4', () => make.ext4('ext4.img'), 'ext'],
    ['NTFS', () => make.ntfs('ntfs.img'), 'ntfs'],
  ])('a whole-disk %s stick is plain (not encrypted)', async (_name, build, filesystem) => {
    expect(await classify(build())).toMatchObject({ encrypted: false, scheme: 'none', filesystem, partitions: [] });
  });

  it.each([['luks1'], ['luks2']] as const)('a %s stick is encrypted', async (type) => {
    const image = make.luks(`${type}.img`, type);
    expect(make.blkidType(image)).toBe('crypto_LUKS');
    expect(await classify(image)).toMatchObject({ encrypted: true, scheme: type });
  });

  it.each([
    ['Vista', 'vista', 'bitlocker'],
    ['Windows 7 and later', 'win7', 'bitlocker'],
    ['To Go (a FAT32-looking boot sector)', 'togo', 'bitlocker-to-go'],
  ] as const)('a BitLocker %s header is encrypted, as blkid also says', async (_name, kind, scheme) => {
    const image = make.bitlocker(`bitlocker-${kind}.img`, kind);
    expect(make.blkidType(image)).toBe('BitLocker');
    expect(await classify(image)).toMatchObject({ encrypted: true, scheme });
  });

  it('a To Go boot sector whose FVE metadata is missing is a plain FAT32 stick, not BitLocker', async () => {
    const image = make.bitlocker('togo-without-fve.img', 'togo', { withMetadata: false });
    expect(await classify(image)).toMatchObject({ encrypted: false, filesystem: 'vfat' });
  });

  it('a plain FAT stick holding files that contain "LUKS" and "-FVE-FS-" is not called encrypted', async () => {
    const image = make.fat('decoys.img', 40);
    make.copyIntoFat(image, 'luks.bin', Buffer.concat([Buffer.from('LUKS'), Buffer.from([0xba, 0xbe, 0x00, 0x02]), Buffer.alloc(4096)]));
    make.copyIntoFat(image, 'fve.bin', Buffer.concat([Buffer.from([0xeb, 0x58, 0x90]), Buffer.from('-FVE-FS-'), Buffer.alloc(4096)]));
    expect(await classify(image)).toMatchObject({ encrypted: false, filesystem: 'vfat' });
  });

  describe('partitioned sticks: encrypted only if every data partition is', () => {
    it('an MBR stick with one FAT partition is plain', async () => {
      const stick = make.partitioned('mbr-fat.img', 'dos', [{ image: make.fat('p-fat.img', 40), type: 'c' }]);
      const result = await classify(stick);
      expect(result).toMatchObject({ encrypted: false, scheme: 'partitioned', partitions: [{ index: 1, table: 'mbr', encrypted: false, filesystem: 'vfat' }] });
    });

    it('a GPT stick with a LUKS2 and a LUKS1 partition is encrypted', async () => {
      const stick = make.partitioned('gpt-luks.img', 'gpt', [
        { image: make.luks('p-luks-a.img', 'luks2'), type: 'linux' },
        { image: make.luks('p-luks-b.img', 'luks1'), type: 'linux' },
      ]);
      const result = await classify(stick);
      expect(result.encrypted).toBe(true);
      expect(result.partitions.map((p) => [p.table, p.scheme])).toEqual([
        ['gpt', 'luks2'],
        ['gpt', 'luks1'],
      ]);
    });

    it('a stick with one LUKS and one FAT partition is plain, on MBR and on GPT', async () => {
      const luks = make.luks('p-mixed-luks.img', 'luks2');
      const fat = make.fat('p-mixed-fat.img', 40);
      for (const [table, types] of [
        ['dos', ['83', 'c']],
        ['gpt', ['linux', 'uefi']],
      ] as const) {
        const stick = make.partitioned(`mixed-${table}.img`, table, [
          { image: luks, type: types[0] },
          { image: fat, type: types[1] },
        ]);
        const result = await classify(stick);
        expect({ table, encrypted: result.encrypted, parts: result.partitions.map((p) => p.encrypted) }).toEqual({
          table,
          encrypted: false,
          parts: [true, false],
        });
      }
    });

    it('reads at most 256 KiB per volume', async () => {
      const stick = make.partitioned('budget.img', 'gpt', [
        { image: make.luks('p-budget-a.img', 'luks2'), type: 'linux' },
        { image: make.fat('p-budget-b.img', 40), type: 'uefi' },
      ]);
      const result = await classify(stick);
      expect(result.bytesRead).toBeLessThanOrEqual(3 * 256 * 1024);
      expect(result.bytesRead).toBeGreaterThan(0);
    });
  });

  it('random bytes are unknown: no signature, which the policy decides', async () => {
    expect(await classify(make.random('random.img', 1))).toMatchObject({ encrypted: 'unknown', scheme: 'unknown' });
  });

  it.each([
    ['an empty image', 0],
    ['an image truncated to 100 bytes', 100],
  ])('%s is a coded error, not a crash', async (_name, bytes) => {
    const image = make.blank(`small-${bytes}.img`, 0);
    if (bytes > 0) writeFileSync(image, Buffer.alloc(bytes, 0xeb));
    await expect(classify(image)).rejects.toMatchObject({ code: 'INV_ERR_VOLUME_TOO_SMALL' });
    await expect(classify(image)).rejects.toBeInstanceOf(InvigilatorError);
  });

  it('invigilator usb classify prints the classification as JSON, and a coded error for a bad image', () => {
    const luks = make.luks('cli-luks.img', 'luks2');
    const shown = runCli(['usb', 'classify', luks]);
    expect(shown.status).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ encrypted: true, scheme: 'luks2', filesystem: null, partitions: [] });
    const empty = make.blank('cli-empty.img', 0);
    expect(runCli(['usb', 'classify', empty])).toMatchObject({ status: 1, stderr: expect.stringContaining('INV_ERR_VOLUME_TOO_SMALL') });
    expect(runCli(['usb', 'classify', '/nonexistent.img'])).toMatchObject({ status: 1, stderr: expect.stringContaining('INV_ERR_FILE_UNREADABLE') });
  });
});
