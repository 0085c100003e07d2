import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { CpioWriter } from './cpio';
import { HostFiles, MERGED_USR } from './host-files';

/**
 * Builds the rig guest: a stock Debian kernel and an initramfs holding udev,
 * util-linux, kmod, busybox, Node and the project. See
 * /work/shared/notes/linux-usb-rig.md for why each piece is there.
 *
 * The initramfs is two cpio archives back to back (Linux unpacks concatenated
 * archives in order): a large "base" (kernel modules, tools, Node, production
 * node_modules), rebuilt only when a package version changes, and a small
 * "payload" (dist/, the udev rule, /init), rebuilt when the project changes.
 */

const REPO = join(__dirname, '..', '..');
export const CACHE_DIR = join(REPO, 'test', '.cache', 'usb-rig');
const DOWNLOADS = join(CACHE_DIR, 'downloads');
const INIT_SCRIPT = join(__dirname, 'init.sh');
const UDEV_RULE = join(REPO, 'installer', 'linux', '61-invigilator-usb.rules');
/** The builder's own sources: a change to how the guest is made is a change of input. */
const RECIPE_FILES = ['build-guest.ts', 'cpio.ts', 'host-files.ts'].map((f) => join(__dirname, f));

/** Modules the guest loads at boot; modprobe pulls in their dependencies. */
const REQUIRED_MODULES = [
  // The virtio transport: the command channel and the gadgets' backing disks.
  'virtio_pci',
  'virtio_console',
  'virtio_blk',
  // The USB host side and storage on it.
  'xhci_pci',
  'ehci_pci',
  'usb_storage',
  'uas',
  'sd_mod',
  'sg',
  // File systems the classification tests mount; nls_ascii is Debian's default FAT charset.
  'vfat',
  'exfat',
  'nls_cp437',
  'nls_ascii',
  'nls_utf8',
  'dm_mod',
  'dm_crypt',
  // A gadget with any VID:PID: an emulated UDC and configfs functions.
  'configfs',
  'udc_core',
  'libcomposite',
  'usb_f_mass_storage',
  'usb_f_hid',
  // So a keyboard gadget binds to a driver as it would on a laptop.
  'usbhid',
  'hid_generic',
];
/** Loaded when this kernel has them; absent is not an error. */
const OPTIONAL_MODULES = ['ext4', 'ntfs3', 'evdev'];
/** Loaded by /init itself with a parameter (num=2), so only included here. */
const INCLUDED_MODULES = ['dummy_hcd'];

/** Real tools, not busybox applets: the agent and the tests must meet what a laptop has. */
const HOST_TOOLS = [
  '/usr/bin/dash',
  '/usr/bin/lsblk',
  '/usr/sbin/blkid',
  '/usr/bin/mount',
  '/usr/bin/umount',
  '/usr/bin/findmnt',
  '/usr/sbin/blockdev',
  '/usr/bin/kmod',
  '/usr/sbin/modprobe',
  '/usr/sbin/insmod',
  '/usr/sbin/rmmod',
  '/usr/sbin/lsmod',
  '/usr/sbin/modinfo',
  '/usr/sbin/depmod',
  '/usr/bin/udevadm',
  '/usr/lib/systemd/systemd-udevd',
];
const BUSYBOX = '/usr/bin/busybox';
/** Host packages whose files go into the guest; their versions key the cache. */
const HOST_PACKAGES = ['busybox-static', 'util-linux', 'mount', 'kmod', 'udev', 'dash', 'libc6', 'libstdc++6'];

export interface GuestBuild {
  kernel: string;
  initramfs: string;
  kernelVersion: string;
  /** What had to be made this time. */
  rebuilt: 'nothing' | 'payload' | 'everything';
  ms: number;
}

type Log = (message: string) => void;

/** Host files and trees the guest is made from that are missing here. */
export function missingBuildInputs(): string[] {
  const needed = [...HOST_TOOLS, BUSYBOX, '/usr/lib/udev/rules.d', INIT_SCRIPT, UDEV_RULE, join(REPO, 'dist'), join(REPO, 'node_modules')];
  return needed.filter((p) => !existsSync(p));
}

export function buildGuest(log: Log = () => undefined): GuestBuild {
  const started = Date.now();
  mkdirSync(DOWNLOADS, { recursive: true });
  const kernelPackage = kernelPackageVersion();
  const baseKey = hash(
    JSON.stringify({
      recipe: RECIPE_FILES.map(fileHash),
      kernelPackage,
      modules: [REQUIRED_MODULES, OPTIONAL_MODULES, INCLUDED_MODULES],
      host: hostPackageVersions(),
      node: nodeIdentity(),
      lock: [join(REPO, 'package-lock.json'), join(REPO, 'node_modules', '.package-lock.json')].map((f) => (existsSync(f) ? fileHash(f) : 'none')),
    }),
  );
  const payloadKey = hash(
    JSON.stringify({ recipe: RECIPE_FILES.map(fileHash), init: fileHash(INIT_SCRIPT), rule: fileHash(UDEV_RULE), dist: treeHash(join(REPO, 'dist')) }),
  );
  const base = join(CACHE_DIR, `base-${baseKey}.cpio`);
  const payload = join(CACHE_DIR, `payload-${payloadKey}.cpio`);
  const initramfs = join(CACHE_DIR, `initramfs-${baseKey.slice(0, 16)}-${payloadKey.slice(0, 16)}.cpio`);
  const kernelVersion = kernelPackage.name.replace(/^linux-image-/, '');
  const kernel = join(CACHE_DIR, `vmlinuz-${kernelVersion}`);

  let rebuilt: GuestBuild['rebuilt'] = 'nothing';
  if (!existsSync(base) || !existsSync(kernel)) {
    log(`building the guest base for ${kernelPackage.name} ${kernelPackage.version}`);
    buildBase(base, kernel, kernelPackage, kernelVersion, log);
    rebuilt = 'everything';
  }
  if (!existsSync(payload)) {
    buildPayload(payload);
    if (rebuilt === 'nothing') rebuilt = 'payload';
  }
  if (!existsSync(initramfs)) concatenate(initramfs, [base, payload]);
  removeStale(CACHE_DIR, [base, payload, initramfs, kernel, DOWNLOADS]);
  removeStale(DOWNLOADS, [kernelDeb(kernelPackage)]);
  return { kernel, initramfs, kernelVersion, rebuilt, ms: Date.now() - started };
}

interface PackageVersion {
  name: string;
  version: string;
}

/**
 * The versioned package linux-image-amd64 depends on, and its version. Debian's
 * metapackage pins it exactly ("linux-image-6.1.0-NN-amd64 (= V)"), so one
 * apt-cache call (about 0.7 s, most of a warm build) answers both.
 */
function kernelPackageVersion(): PackageVersion {
  const ask = (): string => spawnSync('apt-cache', ['show', '--no-all-versions', 'linux-image-amd64'], { encoding: 'utf8', timeout: 60_000 }).stdout ?? '';
  let show = ask();
  if (!/^Depends:/m.test(show) && process.getuid?.() === 0) {
    // A fresh machine has no package lists yet: fetch them once.
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', timeout: 300_000 });
    show = ask();
  }
  const m = /^Depends:.*?(linux-image-[\w.+-]+)\s*\(=\s*([^)\s]+)\)/m.exec(show);
  if (!m?.[1] || !m[2]) throw new Error(`cannot tell which kernel linux-image-amd64 depends on (apt-get update?):\n${show}`);
  return { name: m[1], version: m[2] };
}

function hostPackageVersions(): string {
  return execFileSync('dpkg-query', ['-W', '-f', '${Package} ${Version}\n', ...HOST_PACKAGES], { encoding: 'utf8' });
}

/**
 * The host's own Node goes into the guest, not Debian's nodejs package: the
 * project's native modules (better-sqlite3, usb) are built for the ABI of the
 * Node that ran `npm ci`, and the agent must run on that same ABI.
 */
function nodeIdentity(): string {
  const real = realpathSync(process.execPath);
  const st = statSync(real);
  return `${process.version} ${real} ${st.size} ${st.mtimeMs}`;
}

function buildBase(base: string, kernel: string, pkg: PackageVersion, kernelVersion: string, log: Log): void {
  const work = mkdtempSync(join(CACHE_DIR, 'work-'));
  try {
    const deb = downloadKernel(pkg, log);
    log(`unpacking ${basename(deb)}`);
    const tree = join(work, 'kernel');
    execFileSync('dpkg-deb', ['-x', deb, tree]);
    // The package ships no modules.dep (its postinst makes it): make one to resolve dependencies.
    execFileSync('depmod', ['-b', tree, kernelVersion]);
    const stage = join(work, 'stage');
    const present = stageModules(tree, stage, kernelVersion);
    writeFileSync(join(work, 'modules'), `${present.join('\n')}\n`);

    const cpio = new CpioWriter(base);
    for (const dir of ['dev', 'proc', 'sys', 'run', 'tmp', 'root', 'etc/rig', 'etc/udev/rules.d', 'mnt', 'usr/bin', 'usr/sbin', 'usr/lib64']) cpio.dir(dir);
    for (const [link, target] of Object.entries(MERGED_USR)) cpio.symlink(link, target);
    // The kernel opens /dev/console for PID 1 before /init can mount devtmpfs.
    cpio.charDevice('dev/console', 5, 1);
    cpio.file('etc/rig/modules', readFileSync(join(work, 'modules')));
    cpio.file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
    cpio.file('etc/group', GROUPS.map((g, i) => `${g}:x:${GROUP_IDS[i]}:`).join('\n') + '\n');

    const files = new HostFiles(cpio);
    for (const tool of HOST_TOOLS) files.add(tool);
    cpio.symlink('usr/bin/sh', 'dash');
    files.add(process.execPath, '/usr/bin/node');
    files.addTree('/usr/lib/udev', '/usr/lib/udev', (rel) => rel !== 'hwdb.d');
    if (existsSync('/etc/udev/udev.conf')) files.add('/etc/udev/udev.conf');
    files.add(BUSYBOX);
    for (const applet of busyboxApplets()) {
      if (!cpio.has(`usr/bin/${applet}`) && !cpio.has(`usr/sbin/${applet}`)) cpio.symlink(`usr/bin/${applet}`, 'busybox');
    }
    files.addTree(join(stage, 'lib', 'modules', kernelVersion), `/usr/lib/modules/${kernelVersion}`);
    addProductionModules(files, log);
    cpio.finish();
    copyAtomically(join(tree, 'boot', `vmlinuz-${kernelVersion}`), kernel);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const GROUPS = ['root', 'tty', 'disk', 'lp', 'kmem', 'dialout', 'cdrom', 'floppy', 'tape', 'audio', 'video', 'plugdev', 'input', 'kvm', 'render', 'sgx'];
const GROUP_IDS = [0, 5, 6, 7, 15, 20, 24, 25, 26, 29, 44, 46, 101, 102, 103, 104];

/** Fetches the kernel .deb once; kept in the cache so a recipe change does not download 70 MB again. */
function kernelDeb(pkg: PackageVersion): string {
  return join(DOWNLOADS, `${pkg.name}_${pkg.version.replace(/:/g, '%3a')}_amd64.deb`);
}

function downloadKernel(pkg: PackageVersion, log: Log): string {
  const target = kernelDeb(pkg);
  if (existsSync(target)) return target;
  const tmp = mkdtempSync(join(DOWNLOADS, 'fetch-'));
  try {
    log(`apt-get download ${pkg.name}=${pkg.version}`);
    let result = spawnSync('apt-get', ['download', `${pkg.name}=${pkg.version}`], { cwd: tmp, encoding: 'utf8', timeout: 300_000 });
    if (result.status !== 0 && process.getuid?.() === 0) {
      // Stale package lists name a version the mirror no longer has: refresh them once.
      log('apt-get download failed; apt-get update and one retry');
      spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', timeout: 300_000 });
      result = spawnSync('apt-get', ['download', `${pkg.name}=${pkg.version}`], { cwd: tmp, encoding: 'utf8', timeout: 300_000 });
    }
    const fetched = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (result.status !== 0 || !fetched) throw new Error(`apt-get download ${pkg.name} failed: ${result.stderr}`);
    renameSync(join(tmp, fetched), target);
    return target;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Copies the wanted modules and their dependencies into a staging tree, and runs depmod on it. Returns the names to load at boot. */
function stageModules(tree: string, stage: string, kernelVersion: string): string[] {
  const source = join(tree, 'lib', 'modules', kernelVersion);
  const target = join(stage, 'lib', 'modules', kernelVersion);
  const toLoad: string[] = [];
  const resolve = (name: string, required: boolean): boolean => {
    const r = spawnSync('modprobe', ['-d', tree, '-S', kernelVersion, '--show-depends', name], { encoding: 'utf8' });
    if (r.status !== 0) {
      if (required) throw new Error(`kernel ${kernelVersion} has no module ${name}: ${r.stderr}`);
      return false;
    }
    for (const line of r.stdout.split('\n')) {
      const ko = /^insmod (\S+\.ko(?:\.\w+)?)/.exec(line)?.[1];
      if (!ko) continue;
      const dest = join(target, relative(source, ko));
      mkdirSync(dirname(dest), { recursive: true });
      copyFileSync(ko, dest);
    }
    return true;
  };
  for (const m of REQUIRED_MODULES) if (resolve(m, true)) toLoad.push(m);
  for (const m of OPTIONAL_MODULES) if (resolve(m, false)) toLoad.push(m);
  for (const m of INCLUDED_MODULES) resolve(m, true);
  // modprobe must know what is built in, or it reports those modules missing.
  for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
    if (existsSync(join(source, f))) copyFileSync(join(source, f), join(target, f));
  }
  execFileSync('depmod', ['-b', stage, kernelVersion]);
  return toLoad;
}

function busyboxApplets(): string[] {
  return execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox');
}

/** Sources and build intermediates of native modules (beside a binding.gyp): never loaded, and half their size. */
const NATIVE_SOURCES = [/^build\/Release\/(obj|obj\.target|\.deps)$/, /^deps$/, /^src$/];

/** Only the production dependency tree, as `npm ls --omit=dev` lists it, under /invigilator/node_modules. */
function addProductionModules(files: HostFiles, log: Log): void {
  const r = spawnSync('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  const paths = r.stdout
    .split('\n')
    .map((p) => p.trim())
    .filter((p) => p.startsWith(join(REPO, 'node_modules') + '/'));
  if (paths.length === 0) throw new Error(`npm ls --omit=dev listed no packages (exit ${r.status}): ${r.stderr}`);
  log(`adding ${paths.length} production packages`);
  for (const p of paths) {
    const native = existsSync(join(p, 'binding.gyp'));
    // Nested node_modules are skipped: npm ls lists the production ones among the paths itself.
    files.addTree(p, `/invigilator/${relative(REPO, p)}`, (child) => child !== 'node_modules' && !(native && NATIVE_SOURCES.some((re) => re.test(child))));
  }
}

function buildPayload(payload: string): void {
  const cpio = new CpioWriter(payload);
  cpio.file('init', readFileSync(INIT_SCRIPT), 0o755);
  cpio.file('etc/udev/rules.d/61-invigilator-usb.rules', readFileSync(UDEV_RULE));
  cpio.file('invigilator/package.json', readFileSync(join(REPO, 'package.json')));
  const files = new HostFiles(cpio);
  files.addTree(join(REPO, 'dist'), '/invigilator/dist');
  cpio.finish();
}

function concatenate(target: string, parts: string[]): void {
  const tmp = `${target}.${process.pid}.tmp`;
  const out = openSync(tmp, 'w');
  const chunk = Buffer.alloc(4 << 20);
  try {
    for (const part of parts) {
      const fd = openSync(part, 'r');
      try {
        for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) writeSync(out, chunk, 0, n);
      } finally {
        closeSync(fd);
      }
    }
  } finally {
    closeSync(out);
  }
  renameSync(tmp, target);
}

function copyAtomically(from: string, to: string): void {
  const tmp = `${to}.${process.pid}.tmp`;
  copyFileSync(from, tmp);
  renameSync(tmp, to);
}

/** Keeps the cache to one guest: earlier bases, payloads and kernels go (each base is ~170 MB). */
function removeStale(dir: string, keep: string[]): void {
  const hour = 60 * 60 * 1000;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (keep.includes(path)) continue;
    // A work- or .tmp entry younger than an hour may belong to a build running now.
    const young = Date.now() - statSync(path).mtimeMs < hour;
    if ((entry.startsWith('work-') || entry.startsWith('fetch-') || entry.endsWith('.tmp')) && young) continue;
    rmSync(path, { recursive: true, force: true });
  }
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function fileHash(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Paths and contents of every file under a directory, in a fixed order. */
function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) h.update(`${relative(dir, p)}\0`).update(readFileSync(p));
    }
  };
  if (!existsSync(dir)) throw new Error(`${dir} is missing: run npm run build first`);
  walk(dir);
  return h.digest('hex');
}
