import type { Platform } from '../../../shared/protocol/primitives';
import { folderOf, hasDotSegments, normaliseName, normalisePath } from './process-match';

/**
 * Processes no policy can have killed: Invigilator itself, PID 1, the
 * kernel's threads and what each OS cannot run without. This is checked
 * before any rule, and nothing in a policy can reach past it.
 *
 * Only what a process cannot choose spares it: its pid, its parent's pid,
 * and where its executable really is. A name alone is something a pupil
 * chooses, so a name spares a process only together with the folder that
 * program lives in: `svchost.exe` in System32 is spared, `svchost.exe` in
 * Downloads is judged like anything else. Where the OS gave no path (a
 * protected Windows process, a process the agent may not inspect), the name
 * is all there is, and it spares: the agent runs as root or LocalSystem and
 * is given the path of every process a pupil could start. A path is the
 * file's own only where the process sees the computer's folders: in a
 * private mount namespace the folder spares nothing unless the file at that
 * path here is the one it runs (`pathVouched`).
 *
 * What spares by folder (`os-critical`) yields to a school's hash rule for
 * that very file (software-decision.ts); what spares by who the process is
 * (the agent, its children, PID 1, kernel threads, Invigilator's own
 * programs where they are installed) yields to nothing.
 */

export type FailsafeReason = 'invigilator' | 'invigilator-child' | 'invigilator-app' | 'init' | 'kernel' | 'os-critical';

export interface SelfIdentity {
  /** The agent's own pid and the pids of the processes it started (PowerShell, udevadm, the tray it launched). */
  pids: ReadonlySet<number>;
  /** Folders Invigilator is installed in, as normalised prefixes ending in `/` (defaults per OS below). */
  installFolders?: readonly string[];
}

export interface FailsafeSubject {
  pid: number;
  ppid: number;
  name: string;
  path?: string | undefined;
  kernelThread?: boolean | undefined;
  /** False: the path is a private mount namespace's and names another file here (ObservedProcess.pathVouched), so no folder spares it. */
  pathVouched?: boolean | undefined;
}

/** Where the installers put the tray (installer/linux, installer/win32, installer/darwin). */
export const INSTALL_FOLDERS: Record<Platform, readonly string[]> = {
  linux: ['/opt/Invigilator/', '/usr/lib/invigilator/', '/opt/invigilator/'],
  win32: ['c:/program files/invigilator/'],
  darwin: ['/applications/invigilator.app/', '/library/invigilator/'],
};

/** The tray's and the agent's names, spared by name only when the OS gave no path. */
const INVIGILATOR_NAMES = new Set(['invigilator', 'invigilator-tray', 'invigilator-agent', 'invigilator helper']);

interface Critical {
  names: readonly string[];
  /** The folders the real program is in (exact folder of the executable). */
  folders?: readonly string[];
  /** Or anywhere under these (macOS: the folders System Integrity Protection keeps even root from writing). */
  under?: readonly string[];
  /** The real one has no executable file at all (Windows' System, Registry): a path means an impostor. */
  pathless?: boolean;
}

const SYS32 = 'c:/windows/system32/';
const WOW64 = 'c:/windows/syswow64/';
const USR_SYSTEMD = ['/usr/lib/systemd/', '/lib/systemd/'];
const BINS = ['/usr/bin/', '/bin/'];
const SBINS = ['/usr/sbin/', '/sbin/'];
const LIBEXEC = ['/usr/libexec/', '/usr/lib/'];
const SIP = ['/system/', '/usr/libexec/', '/usr/sbin/', '/usr/bin/', '/sbin/', '/bin/'];

const CRITICAL: Record<Platform, readonly Critical[]> = {
  win32: [
    { names: ['system', 'registry', 'secure system', 'memory compression', 'memcompression', 'system idle process'], pathless: true },
    {
      names: ['smss', 'csrss', 'wininit', 'winlogon', 'services', 'lsass', 'lsaiso', 'svchost', 'dwm', 'fontdrvhost', 'logonui', 'userinit'],
      folders: [SYS32],
    },
    { names: ['sihost', 'taskhostw', 'ctfmon', 'conhost', 'runtimebroker', 'audiodg', 'spoolsv', 'wudfhost', 'wmiprvse', 'dllhost'], folders: [SYS32, WOW64] },
    { names: ['explorer'], folders: ['c:/windows/'] },
    {
      names: ['msmpeng', 'nissrv', 'mpdefendercoreservice', 'securityhealthservice'],
      folders: [SYS32],
      under: ['c:/programdata/microsoft/windows defender/platform/', 'c:/program files/windows defender/'],
    },
  ],
  linux: [
    { names: ['systemd', 'init'], folders: [...USR_SYSTEMD, ...SBINS, ...BINS] },
    {
      names: [
        'systemd-journald',
        'systemd-logind',
        'systemd-udevd',
        'systemd-resolved',
        'systemd-networkd',
        'systemd-timesyncd',
        'systemd-userdbd',
        'systemd-oomd',
        'systemd-userwork',
      ],
      folders: USR_SYSTEMD,
    },
    { names: ['udevd'], folders: [...SBINS, ...USR_SYSTEMD] },
    { names: ['dbus-daemon', 'dbus-broker', 'dbus-broker-launch'], folders: BINS },
    { names: ['xorg'], folders: ['/usr/lib/xorg/', '/usr/libexec/', ...BINS] },
    { names: ['xwayland'], folders: BINS },
    {
      names: [
        'gnome-shell',
        'plasmashell',
        'kwin_x11',
        'kwin_wayland',
        'ksmserver',
        'xfwm4',
        'xfce4-session',
        'cinnamon',
        'mutter',
        'mate-session',
        'lxsession',
      ],
      folders: BINS,
    },
    { names: ['gnome-session-binary', 'gnome-session-service'], folders: ['/usr/libexec/', '/usr/lib/gnome-session/'] },
    { names: ['gdm', 'gdm3', 'lightdm', 'sddm'], folders: [...SBINS, ...BINS] },
    { names: ['gdm-session-worker', 'gdm-wayland-session', 'gdm-x-session'], folders: ['/usr/libexec/', '/usr/lib/gdm3/'] },
    { names: ['sshd'], folders: SBINS },
    { names: ['sshd-session', 'sshd-auth'], folders: ['/usr/lib/openssh/', '/usr/libexec/openssh/', '/usr/libexec/'] },
    { names: ['networkmanager', 'wpa_supplicant'], folders: SBINS },
    { names: ['polkitd'], folders: ['/usr/lib/polkit-1/', ...LIBEXEC] },
    { names: ['agetty', 'login'], folders: [...SBINS, ...BINS] },
  ],
  darwin: [
    { names: ['kernel_task'], pathless: true },
    {
      names: [
        'launchd',
        'windowserver',
        'loginwindow',
        'finder',
        'dock',
        'systemuiserver',
        'controlcenter',
        'logd',
        'securityd',
        'opendirectoryd',
        'configd',
        'mds',
        'mds_stores',
        'coreservicesd',
        'notifyd',
        'diskarbitrationd',
        'syslogd',
        'cfprefsd',
        'trustd',
        'distnoted',
        'usereventagent',
        'powerd',
        'fseventsd',
        'kextd',
        'kernelmanagerd',
        'airportd',
        'bluetoothd',
      ],
      under: SIP,
    },
  ],
};

const criticalIndex = new Map<Platform, Map<string, Critical>>();

function criticalFor(platform: Platform): Map<string, Critical> {
  let index = criticalIndex.get(platform);
  if (!index) {
    index = new Map();
    for (const c of CRITICAL[platform]) for (const n of c.names) index.set(n, c);
    criticalIndex.set(platform, index);
  }
  return index;
}

/** The OS-critical names of a platform (for documentation and tests). */
export function criticalNames(platform: Platform): string[] {
  return [...criticalFor(platform).keys()];
}

/**
 * The processes that are each OS's kernel or core by number, as facts:
 * Linux's kernel threads (kthreadd is pid 2, every kernel thread its child),
 * Windows' System (pid 4). macOS's kernel_task is pid 0, spared as init.
 */
const OS_ITSELF: Readonly<Record<Platform, { kernelThreads: boolean; kernelPids: readonly number[]; criticalPids: readonly number[] }>> = {
  linux: { kernelThreads: true, kernelPids: [2], criticalPids: [] },
  darwin: { kernelThreads: false, kernelPids: [], criticalPids: [] },
  win32: { kernelThreads: false, kernelPids: [], criticalPids: [4] },
};

/** Why this process may never be killed, or undefined when the policy decides. */
export function failsafeReason(p: FailsafeSubject, platform: Platform, self: SelfIdentity): FailsafeReason | undefined {
  if (self.pids.has(p.pid)) return 'invigilator';
  if (p.ppid > 0 && self.pids.has(p.ppid)) return 'invigilator-child';
  if (p.pid <= 1) return 'init';
  const own = OS_ITSELF[platform];
  if (own.kernelThreads && (p.kernelThread === true || own.kernelPids.includes(p.pid) || own.kernelPids.includes(p.ppid))) return 'kernel';
  if (own.criticalPids.includes(p.pid)) return 'os-critical';

  const name = normaliseName(p.name);
  const path = p.path === undefined || p.path === '' ? undefined : normalisePath(p.path, platform);
  // An unresolved path (`..` in it), or one a private mount namespace gave, says nothing about where the file is: judge it as having none that spares.
  const trusted = path !== undefined && !hasDotSegments(path) && p.pathVouched !== false ? path : undefined;

  const install = self.installFolders ?? INSTALL_FOLDERS[platform];
  if (trusted && install.some((f) => trusted.startsWith(normalisePath(f, platform)))) return 'invigilator-app';
  if (path === undefined && INVIGILATOR_NAMES.has(name)) return 'invigilator-app';

  const critical = criticalFor(platform).get(name);
  if (!critical) return undefined;
  if (path === undefined) return 'os-critical';
  if (critical.pathless || !trusted) return undefined;
  const folder = folderOf(trusted);
  if (critical.folders?.includes(folder)) return 'os-critical';
  if (critical.under?.some((u) => trusted.startsWith(u))) return 'os-critical';
  return undefined;
}
