'use strict';
/**
 * Time inside the agent from a USB arrival being observed to the block (or
 * allow) being issued to the OS: the guard, the pure rule, and for sticks the
 * bounded read and classification of real disk images made here with mkfs,
 * cryptsetup and sfdisk. The OS's own work (enumeration, the sysfs write, the
 * disk being read from a real stick rather than the page cache) is excluded:
 * the adapter below issues actions by recording the time. Events go to a
 * real, durable outbox meanwhile. Goal: p99 ≤ 20 ms. Also reports the most
 * bytes read to classify one stick (budget 256 KiB per volume).
 */
const { execFileSync } = require('node:child_process');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { randomBytes } = require('node:crypto');
const { DIST, percentile, writeResult, tempDir } = require('./lib');
const { Outbox, DEFAULT_OUTBOX_OPTIONS } = require(join(DIST, 'agent/outbox/outbox.js'));
const { UsbGuard } = require(join(DIST, 'agent/usb/usb-guard.js'));
const { FileByteSource } = require(join(DIST, 'agent/usb/file-byte-source.js'));
const { preset } = require(join(DIST, 'shared/policy/presets/index.js'));
const { createLogger } = require(join(DIST, 'node-common/logging.js'));

const ARRIVALS = 2000;
const BURST = 50;

function makeImages(dir) {
  const run = (cmd, args, input) => execFileSync(cmd, args, { cwd: dir, stdio: input ? ['pipe', 'ignore', 'ignore'] : 'ignore', input });
  run('truncate', ['-s', '40M', 'fat.img']);
  run('mkfs.vfat', ['-F', '32', 'fat.img']);
  run('truncate', ['-s', '16M', 'exfat.img']);
  run('mkfs.exfat', ['exfat.img']);
  run('truncate', ['-s', '20M', 'luks2.img']);
  writeFileSync(join(dir, 'key'), randomBytes(32));
  run('cryptsetup', [
    'luksFormat',
    '--batch-mode',
    '--type',
    'luks2',
    '--key-file',
    'key',
    '--pbkdf',
    'pbkdf2',
    '--pbkdf-force-iterations',
    '1000',
    'luks2.img',
  ]);
  // A stick with a LUKS partition and a FAT partition: both are read before it is blocked.
  run('truncate', ['-s', '64M', 'mixed.img']);
  run('sfdisk', ['-q', 'mixed.img'], 'label: dos\nsize=24MiB, type=83\nsize=36MiB, type=c\n');
  execFileSync('dd', ['if=luks2.img', 'of=mixed.img', 'bs=1M', 'seek=1', 'conv=notrunc'], { cwd: dir, stdio: 'ignore' });
  execFileSync('dd', ['if=fat.img', 'of=mixed.img', 'bs=1M', 'seek=25', 'count=36', 'conv=notrunc'], { cwd: dir, stdio: 'ignore' });
  writeFileSync(join(dir, 'random.img'), randomBytes(4 * 1024 * 1024));
  return ['fat', 'exfat', 'luks2', 'mixed', 'random'].map((n) => join(dir, `${n}.img`));
}

/** An OS adapter whose actions cost nothing but a timestamp, so only the agent's own time is measured. */
class TimingPlatform {
  constructor() {
    this.platform = 'linux';
    this.canReadOnly = true;
    this.issuedAt = new Map();
    this.images = new Map();
  }
  async start(listener) {
    this.listener = listener;
    return [];
  }
  async stop() {}
  async storage(device) {
    const image = this.images.get(device.key);
    return image ? [{ device: `/dev/${device.key}`, open: () => FileByteSource.open(image), volumes: [] }] : [];
  }
  async allow(device) {
    this.issuedAt.set(device.key, performance.now());
  }
  async block(device) {
    this.issuedAt.set(device.key, performance.now());
  }
  async readOnly(device) {
    this.issuedAt.set(device.key, performance.now());
  }
  arrive(key, device, image) {
    if (image) this.images.set(key, image);
    const observedAt = performance.now();
    this.listener({ kind: 'arrived', device: { key, ...device } });
    return observedAt;
  }
}

async function main() {
  const images = makeImages(tempDir('usb-images'));
  const { outbox } = await Outbox.open({ ...DEFAULT_OUTBOX_OPTIONS, dir: tempDir('usb-outbox') });
  const platform = new TimingPlatform();
  let bytesReadMax = 0;
  const decided = new Map();
  const guard = new UsbGuard({
    platform,
    policy: () => preset('basildon-primary'),
    currentUser: () => ({ name: 'amy.p', role: 'pupil' }),
    record: (e) => outbox.append(e).then(() => undefined),
    notices: { show: () => undefined, withdraw: () => undefined },
    sendPermissionRequest: () => false,
    deviceIdentity: async () => undefined,
    dataDir: tempDir('usb-data'),
    logger: createLogger({ program: 'bench', level: 'error', console: false }),
    onDecided: (info) => {
      bytesReadMax = Math.max(bytesReadMax, info.bytesRead);
      decided.set(info.key, info.action);
    },
  });
  await guard.start();

  const kinds = [...images.map((image) => ({ image, classes: [8] })), { image: undefined, classes: [3] }, { image: undefined, classes: [7] }];
  const device = (i, classes) => ({
    vendorId: '0781',
    productId: (0x5000 + (i % 4096)).toString(16),
    serial: `SN${i}`,
    deviceClass: 0,
    interfaceClasses: classes,
  });
  const sample = async (keys) => {
    const observed = new Map();
    for (const [key, kind, i] of keys) observed.set(key, platform.arrive(key, device(i, kind.classes), kind.image));
    await guard.settled();
    return keys.map(([key]) => platform.issuedAt.get(key) - observed.get(key));
  };

  // Warm-up: the first classification pays for loading code.
  await sample(kinds.map((kind, i) => [`warm-${i}`, kind, i]));
  const sequential = [];
  for (let i = 0; i < ARRIVALS; i++) sequential.push(...(await sample([[`s-${i}`, kinds[i % kinds.length], i]])));
  const burst = [];
  for (let round = 0; round < 10; round++) {
    burst.push(...(await sample(Array.from({ length: BURST }, (_, j) => [`b-${round}-${j}`, kinds[j % kinds.length], round * BURST + j]))));
  }
  await guard.stop();
  await outbox.close();
  const actions = {};
  for (const a of decided.values()) actions[a] = (actions[a] ?? 0) + 1;
  const round = (x) => Math.round(x * 1000) / 1000;
  writeResult('usb-decision', {
    arrivals: sequential.length,
    mix: 'FAT32, exFAT, LUKS2, MBR LUKS2+FAT, random bytes, keyboard, printer; basildon-primary, pupil',
    p50Ms: round(percentile(sequential, 50)),
    p99Ms: round(percentile(sequential, 99)),
    maxMs: round(Math.max(...sequential)),
    burst: { size: BURST, rounds: 10, p50Ms: round(percentile(burst, 50)), p99Ms: round(percentile(burst, 99)) },
    bytesReadMax,
    actions,
    goal: { p99Ms: 20 },
    met: percentile(sequential, 99) <= 20,
    excludes: 'the OS: enumeration, the sysfs write, reading a real stick (images are in the page cache)',
  });
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
