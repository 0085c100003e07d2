import type { Platform } from '../../shared/protocol/primitives';
import type { SOFTWARE_CATEGORIES } from '../../shared/policy/schema';
import { normaliseName } from './programs/process-match';

/**
 * The curated lists behind a policy's `categories`: which programs are a
 * hacking tool, evidence-elimination software, a personal cloud-storage
 * client, a filter-bypass tool or a game, by the name of the program's
 * executable (case-insensitively, without `.exe`).
 *
 * Why here (agent/software) and not in shared/: only the agent matches
 * processes, and the matchers' meaning (base names, path fragments, Linux
 * comm) is the agent's; the list ships and changes with the agent. It
 * imports nothing from Node, so it can move to shared/ unchanged the day the
 * dashboard needs to show what a category covers.
 *
 * Names catch a program under its own name only: a renamed copy is caught by
 * the school's hash rules, the allowlist mode, or not at all. Every entry
 * says where its names came from (`source`); "general knowledge" means no
 * public list was found that states them, and they should be checked on a
 * real install before anyone relies on them.
 */

export type SoftwareCategory = (typeof SOFTWARE_CATEGORIES)[number];

export interface CatalogueEntry {
  /** Identifier of the entry, for logs and tests. */
  id: string;
  /** The program as people call it. */
  label: string;
  category: SoftwareCategory;
  /** Executable names on every OS (compared normalised: lower case, no `.exe`). */
  names?: readonly string[];
  /** Names only on one OS, where they differ. */
  win32?: readonly string[];
  linux?: readonly string[];
  darwin?: readonly string[];
  /** Names of the form UltraSurf uses (`u1601.exe`): tested against the normalised name. */
  namePatterns?: readonly RegExp[];
  /**
   * The path must contain one of these (lower case, `/` separators): for a
   * program whose executable has a common name (Tor Browser's `firefox`,
   * Box's `Box`). Without a path the entry does not match.
   */
  pathContains?: readonly string[];
  /** Where the names come from. */
  source: string;
  note?: string;
}

const SCOOP_EXTRAS = 'ScoopInstaller/Extras, the Scoop package manifest';
const SCOOP_MAIN = 'ScoopInstaller/Main, the Scoop package manifest';
const LOLRMM = 'magicsword-io/LOLRMM, InstallationPaths of';
const KALI = 'Kali Linux metapackage kali-linux-default, as listed in FonderElite/Kali-Metapackages README and AkechiShiro/arewehackersyet kali-groups.json';
const GENERAL = 'general knowledge (no public list found stating these names)';

export const CATALOGUE: readonly CatalogueEntry[] = [
  // ---- hacking-tool: "loggers", "sniffers", crackers, scanners (Basildon 3.7) ----
  {
    id: 'wireshark',
    label: 'Wireshark',
    category: 'hacking-tool',
    names: ['wireshark', 'dumpcap', 'tshark', 'rawshark'],
    source: `${SCOOP_EXTRAS} bucket/wireshark.json ("bin": Wireshark.exe, dumpcap.exe, tshark.exe, rawshark.exe); the same names on Linux (Debian packages wireshark, tshark) and in Wireshark.app on macOS`,
    note: "Wireshark's file utilities (capinfos, editcap, mergecap) are left out: they read captures, they do not capture.",
  },
  {
    id: 'packet-capture',
    label: 'tcpdump / WinDump',
    category: 'hacking-tool',
    win32: ['windump'],
    linux: ['tcpdump'],
    darwin: ['tcpdump'],
    source:
      'Sigma rule "Network Sniffing" (id ba1f7802-adc7-48b4-9ecb-81e227fddfd5, mirrored in atc-project/atomic-threat-coverage win_network_sniffing.md: windump.exe, tshark.exe); Atomic Red Team T1040 "Packet Capture Linux using tshark or tcpdump"',
    note: 'tcpdump ships with many Linux installs and with macOS; only root can capture, so for pupils it matters only where they have root.',
  },
  {
    id: 'nmap',
    label: 'Nmap / Zenmap',
    category: 'hacking-tool',
    names: ['nmap', 'nping', 'zenmap'],
    source: `${SCOOP_MAIN} bucket/nmap.json ("bin": nmap.exe, nping.exe; the "Zenmap - Nmap GUI" shortcut); ${KALI} (nmap)`,
    note: 'Zenmap on Windows runs as zenmap/bin/pythonw.exe and is not caught by name; nmap.exe, which it runs, is.',
  },
  {
    id: 'netcat',
    label: 'Netcat / Ncat',
    category: 'hacking-tool',
    names: ['nc', 'ncat', 'netcat'],
    source:
      'Sigma rule "PUA - Netcat Suspicious Execution" (SigmaHQ/sigma rules/windows/process_creation/proc_creation_win_pua_netcat.yml: \\nc.exe, \\ncat.exe, \\netcat.exe)',
    note: 'nc is in some Linux base installs (netcat-openbsd); scripts that use it will fail for the roles this category applies to.',
  },
  {
    id: 'network-scanners',
    label: 'Network scanners',
    category: 'hacking-tool',
    names: ['advanced_ip_scanner', 'advanced_ip_scanner_console', 'masscan', 'netdiscover', 'arp-scan', 'ipscan'],
    source: `Sigma rule "Advanced IP Scanner" (SigmaHQ/sigma proc_creation_win_advanced_ip_scanner.yml: Image contains \\advanced_ip_scanner); ${KALI} (masscan, netdiscover, arp-scan); ipscan (Angry IP Scanner) from ${GENERAL}`,
  },
  {
    id: 'mimikatz',
    label: 'Mimikatz',
    category: 'hacking-tool',
    names: ['mimikatz'],
    source: `${KALI} (mimikatz); roadwy/DefenderYara HackTool/Win32/Mimikatz (the signature matches the string "mimikatz.exe")`,
  },
  {
    id: 'lazagne',
    label: 'LaZagne',
    category: 'hacking-tool',
    names: ['lazagne'],
    source:
      'a public detection list found by the search tool ("lazagne\\.exe", "LaZagne is an open source application used to retrieve passwords"); its repository was not named',
  },
  {
    id: 'password-crackers',
    label: 'Password crackers',
    category: 'hacking-tool',
    names: ['ophcrack', 'ophcrack-cli', 'john', 'hashcat', 'hydra', 'xhydra', 'medusa', 'ncrack'],
    source: `${KALI} (ophcrack, ophcrack-cli, john, hashcat, hydra, hydra-gtk, ncrack, medusa in tolgaakkapulu/BrutForT's tool list)`,
  },
  {
    id: 'cain-and-abel',
    label: 'Cain & Abel',
    category: 'hacking-tool',
    win32: ['cain', 'abel'],
    source: `a public password-tools list (pastebin, "Cain & Abel - Password recovery tool for Microsoft Operating Systems - http://www.oxid.it/cain.html"); the executable names Cain.exe and Abel.exe from ${GENERAL}`,
  },
  {
    id: 'wifi-crackers',
    label: 'Wi-Fi attack tools',
    category: 'hacking-tool',
    names: ['aircrack-ng', 'airodump-ng', 'aireplay-ng', 'airbase-ng', 'wifite', 'reaver', 'kismet'],
    source: `${KALI} (group 802-11: aircrack-ng, wifite, reaver, kismet); ${SCOOP_EXTRAS} bucket/aircrack-ng.json exists for Windows`,
  },
  {
    id: 'interception',
    label: 'Traffic interception tools',
    category: 'hacking-tool',
    names: ['ettercap', 'bettercap', 'mitmproxy', 'mitmdump', 'mitmweb', 'arpspoof'],
    source: `${KALI} (mitmproxy, and ettercap, bettercap, dsniff's arpspoof in its sniffing-spoofing group)`,
  },
  {
    id: 'keyloggers',
    label: 'Keyloggers',
    category: 'hacking-tool',
    names: ['logkeys', 'keylogger', 'keylog'],
    source: `logkeys: the Linux keylogger of that name (kernc/logkeys); "keylogger"/"keylog": ${GENERAL} (the names of many public keylogger projects' builds)`,
    note: 'Keyloggers are mostly malware under an innocent name: name matching catches only the honest ones. Hash rules and the allowlist mode catch the rest.',
  },

  // ---- evidence-elimination (Basildon 3.7: "evidence elimination software") ----
  {
    id: 'ccleaner',
    label: 'CCleaner',
    category: 'evidence-elimination',
    win32: ['ccleaner', 'ccleaner64'],
    darwin: ['ccleaner'],
    source: `${SCOOP_EXTRAS} bucket/ccleaner.json (CCleaner.exe, CCleaner64.exe); the macOS app's name from ${GENERAL}`,
  },
  {
    id: 'bleachbit',
    label: 'BleachBit',
    category: 'evidence-elimination',
    names: ['bleachbit', 'bleachbit_console'],
    source: `${SCOOP_EXTRAS} bucket/bleachbit.json (bleachbit.exe, bleachbit_console.exe); bleachbit(1) (Ubuntu manpages) and the Arch package file list (/usr/bin/bleachbit)`,
    note: "On Linux /usr/bin/bleachbit is a Python script: the process's executable is python3 and its comm is bleachbit, which is what matches.",
  },
  {
    id: 'eraser',
    label: 'Eraser',
    category: 'evidence-elimination',
    win32: ['eraser'],
    source: `${SCOOP_EXTRAS} bucket/eraser.json ("bin": Eraser.exe; homepage eraser.heidi.ie)`,
  },
  {
    id: 'sdelete',
    label: 'SDelete',
    category: 'evidence-elimination',
    win32: ['sdelete', 'sdelete64'],
    source:
      'Sigma rule "Potential File Overwrite Via Sysinternals SDelete" (SigmaHQ/sigma proc_creation_win_sysinternals_sdelete.yml: OriginalFileName sdelete.exe); sdelete64.exe from the Sysinternals download, general knowledge',
  },
  {
    id: 'privazer',
    label: 'PrivaZer',
    category: 'evidence-elimination',
    win32: ['privazer'],
    source: GENERAL,
  },

  // ---- personal-cloud-storage (Carrington: prohibited except OneDrive for Business / SharePoint) ----
  {
    id: 'dropbox',
    label: 'Dropbox',
    category: 'personal-cloud-storage',
    names: ['dropbox'],
    source: `${LOLRMM} yaml/dropbox.yaml (*\\Dropbox.exe, C:\\Program Files (x86)\\Dropbox\\Client\\*)`,
  },
  {
    id: 'google-drive',
    label: 'Google Drive for desktop',
    category: 'personal-cloud-storage',
    win32: ['googledrivefs'],
    darwin: ['google drive'],
    source: `${LOLRMM} yaml/google_drive.yaml (*\\GoogleDriveFS.exe, C:\\Program Files\\Google\\Drive File Stream\\*); the macOS app name from ${GENERAL}`,
    note: 'The same client serves personal and Workspace accounts: a school on Google Workspace must not use this category, or must give staff a role without it.',
  },
  {
    id: 'icloud',
    label: 'iCloud for Windows',
    category: 'personal-cloud-storage',
    win32: ['iclouddrive', 'icloudservices', 'icloudphotos', 'icloudhome'],
    source: GENERAL,
    note: 'On macOS iCloud Drive is part of the OS (bird, cloudd): it is turned off by an MDM restriction, never by killing OS processes, so nothing is listed for macOS.',
  },
  {
    id: 'mega',
    label: 'MEGA (MEGAsync)',
    category: 'personal-cloud-storage',
    names: ['megasync', 'megacmdserver'],
    source: `${SCOOP_EXTRAS} bucket/megasync.json ("bin": MEGAsync.exe); ${LOLRMM} yaml/megasync.yaml (AppData\\Local\\MEGAsync); megacmdserver from ${GENERAL}`,
  },
  {
    id: 'box',
    label: 'Box Drive',
    category: 'personal-cloud-storage',
    names: ['box', 'boxsync'],
    pathContains: ['/box/', '/box.app/', '/box sync/', '/box sync.app/'],
    source: `${LOLRMM} yaml/box.yaml (C:\\Program Files\\Box\\Box\\*, *\\Box.exe); Box Sync from ${GENERAL}`,
    note: '"Box" is too common a name to match alone, so the path must be in a Box folder.',
  },
  {
    id: 'pcloud',
    label: 'pCloud Drive',
    category: 'personal-cloud-storage',
    names: ['pcloud'],
    source: `${LOLRMM} yaml/pcloud.yaml (*\\pCloud.exe, C:\\Program Files (x86)\\pCloud Drive\\)`,
  },
  {
    id: 'tresorit',
    label: 'Tresorit',
    category: 'personal-cloud-storage',
    names: ['tresorit'],
    source: GENERAL,
  },
  {
    id: 'sugarsync',
    label: 'SugarSync',
    category: 'personal-cloud-storage',
    names: ['sugarsync', 'sugarsyncmanager'],
    source: GENERAL,
  },
  {
    id: 'amazon-drive',
    label: 'Amazon Drive / Amazon Photos',
    category: 'personal-cloud-storage',
    win32: ['amazonclouddrive', 'amazondrive', 'amazonphotos'],
    darwin: ['amazon photos'],
    source: `${LOLRMM} yaml/amazon_(cloud)_drive.yaml (*\\AmazonCloudDrive.exe, AppData\\Local\\Amazon\\Cloud Drive); Amazon Drive and Amazon Photos names from ${GENERAL}`,
  },
  {
    id: 'mediafire',
    label: 'MediaFire Desktop',
    category: 'personal-cloud-storage',
    names: ['mediafire', 'mediafiredesktop'],
    source: GENERAL,
    note: 'MediaFire withdrew its desktop client; the names are kept for old installs and are unverified.',
  },
  {
    id: 'wetransfer',
    label: 'WeTransfer',
    category: 'personal-cloud-storage',
    names: ['wetransfer'],
    source: GENERAL,
    note: "WeTransfer is used through a web browser almost always: that is the web filter's to block, not a process rule.",
  },
  {
    id: 'other-cloud-sync',
    label: 'Other cloud-sync clients',
    category: 'personal-cloud-storage',
    names: ['rclone', 'insync', 'yandexdisk', 'yandexdisk2'],
    source: `rclone: ${SCOOP_MAIN} bucket/rclone.json ("bin": rclone.exe) and ${LOLRMM} yaml/rclone.yaml; insync and Yandex Disk from ${GENERAL}`,
  },

  // ---- filter-bypass: Tor, proxies, VPNs, tools that stop the school's own controls ----
  {
    id: 'tor',
    label: 'Tor',
    category: 'filter-bypass',
    names: ['tor'],
    source: 'Sigma rule "Tor Client/Browser Execution" (SigmaHQ/sigma proc_creation_win_browsers_tor_execution.yml: \\tor.exe)',
  },
  {
    id: 'tor-browser',
    label: 'Tor Browser',
    category: 'filter-bypass',
    names: ['firefox', 'firefox.real', 'start-tor-browser', 'torbrowser'],
    pathContains: ['/tor browser/', '/tor-browser/', '/tor-browser_', '/tor browser.app/', '/torbrowser/'],
    source: `Sigma rule "Tor Client/Browser Execution" (\\Tor Browser\\Browser\\firefox.exe); ${SCOOP_EXTRAS} bucket/tor-browser.json (firefox.exe as tor-browser); Linux and macOS folder names from ${GENERAL}`,
    note: "Tor Browser's executable is firefox: only a firefox inside a Tor Browser folder matches, never an ordinary Firefox.",
  },
  {
    id: 'psiphon',
    label: 'Psiphon',
    category: 'filter-bypass',
    names: ['psiphon3', 'psiphon', 'psiphon-tunnel-core'],
    source: `Psiphon's own projects (Psiphon-Inc "Psiphon 3 Circumvention System" README; Psiphon-Labs/psiphon-tunnel-core); the client's file name psiphon3.exe from ${GENERAL}`,
  },
  {
    id: 'ultrasurf',
    label: 'UltraSurf',
    category: 'filter-bypass',
    names: ['ultrasurf'],
    namePatterns: [/^u\d{3,4}$/],
    source: GENERAL,
    note: 'UltraSurf ships as u.exe or u<version>.exe (u1601.exe); the bare "u" is too common a name to list.',
  },
  {
    id: 'openvpn',
    label: 'OpenVPN',
    category: 'filter-bypass',
    names: ['openvpn', 'openvpn-gui', 'openvpnconnect', 'openvpn connect'],
    source: GENERAL,
    note: "A school's own VPN may use OpenVPN (on Linux NetworkManager runs /usr/sbin/openvpn as root): give the roles that need it categories without filter-bypass.",
  },
  {
    id: 'wireguard',
    label: 'WireGuard',
    category: 'filter-bypass',
    names: ['wireguard', 'wireguard-go', 'boringtun'],
    source: GENERAL,
    note: "Linux's in-kernel WireGuard has no process to stop: that is the firewall's job.",
  },
  {
    id: 'consumer-vpns',
    label: 'Consumer VPN apps',
    category: 'filter-bypass',
    names: [
      'hotspotshield',
      'hotspot shield',
      'nordvpn',
      'nordvpn-service',
      'expressvpn',
      'protonvpn',
      'windscribe',
      'tunnelbear',
      'cyberghost',
      'lantern',
      'urban-vpn',
      'hola',
    ],
    source: `${GENERAL}; the products from bkil/freedom-fighters en/service/vpn-servers.md and iilab/siab's circumvention guide (Hotspot Shield, Psiphon)`,
  },
  {
    id: 'proxies-and-tunnels',
    label: 'Proxies and tunnels',
    category: 'filter-bypass',
    names: ['proxifier', 'ngrok', 'cloudflared', 'goodbyedpi', 'dnscrypt-proxy', 'proxychains', 'proxychains4', 'sslocal', 'ss-local', 'v2ray', 'xray'],
    source: `ngrok and cloudflared: ${LOLRMM} yaml/ngrok.yaml and yaml/cloudflare_tunnel.yaml; goodbyedpi and dnscrypt-proxy: m0cYD/dpi_killer README (ValdikSS/GoodbyeDPI, jedisct1/dnscrypt-proxy); proxychains: ${KALI}; Proxifier, shadowsocks (sslocal, ss-local), v2ray, xray from ${GENERAL}`,
  },
  {
    id: 'control-killers',
    label: 'Tools that stop or suspend other programs',
    category: 'filter-bypass',
    win32: ['processhacker', 'systeminformer', 'pskill', 'pskill64', 'pssuspend', 'pssuspend64'],
    source:
      'Sigma rule "PUA - Process Hacker Execution" (SigmaHQ/sigma proc_creation_win_pua_process_hacker.yml: \\ProcessHacker.exe); ' +
      `${SCOOP_EXTRAS} bucket/systeminformer.json (systeminformer.exe); pskill and pssuspend as zhouxuanyi-zxy/Python-Nanruan-Killer uses them against classroom software (StudentMain.exe)`,
    note: 'Batch-file killers (drafolin/LanSchool-Riddance, taskkill loops) run as cmd.exe and taskkill.exe, OS programs no name rule can stop: the tray-missing check and agent.tamper are the answer to those.',
  },

  // ---- game ----
  {
    id: 'steam',
    label: 'Steam',
    category: 'game',
    names: ['steam', 'steamwebhelper'],
    darwin: ['steam_osx'],
    source: `purpl3-yt/trash-bin apps.py (steam.exe, steamwebhelper.exe); Luca040619/Auto-Updater utils/launchers.py (Steam\\steam.exe); steam_osx from ${GENERAL}`,
  },
  {
    id: 'epic-games',
    label: 'Epic Games Launcher',
    category: 'game',
    names: ['epicgameslauncher'],
    source: 'Luca040619/Auto-Updater utils/launchers.py (Epic Games\\Launcher\\Portal\\Binaries\\Win32\\EpicGamesLauncher.exe)',
  },
  {
    id: 'roblox',
    label: 'Roblox',
    category: 'game',
    names: ['robloxplayerbeta', 'robloxplayerlauncher', 'robloxplayer'],
    source:
      'Min-Shung/Anti-addiction DetectGameProcess.java (RobloxPlayerBeta.exe); purpl3-yt/trash-bin apps.py (RobloxPlayerLauncher.exe); macOS RobloxPlayer from general knowledge',
    note: 'Roblox Studio (RobloxStudioBeta) is left out: some schools teach with it.',
  },
  {
    id: 'minecraft',
    label: 'Minecraft launchers',
    category: 'game',
    names: ['minecraftlauncher', 'minecraft.windows', 'minecraft launcher'],
    source: GENERAL,
    note: 'Minecraft Java Edition runs inside java/javaw and cannot be told apart by name; Minecraft Education is left out (schools use it).',
  },
  {
    id: 'game-launchers',
    label: 'Other game launchers',
    category: 'game',
    win32: ['battle.net', 'battle.net launcher', 'eadesktop', 'origin', 'ubisoftconnect', 'upc', 'galaxyclient', 'riotclientservices', 'leagueclient'],
    names: ['itch'],
    source:
      'Luca040619/Auto-Updater utils/launchers.py (Battle.net Launcher.exe, EADesktop.exe, Origin.exe, UbisoftConnect.exe, GalaxyClient.exe, RiotClientServices.exe); ' +
      `Min-Shung/Anti-addiction DetectGameProcess.java (LeagueClient.exe); upc and itch from ${GENERAL}`,
  },
  {
    id: 'popular-games',
    label: 'Popular games',
    category: 'game',
    win32: ['fortniteclient-win64-shipping', 'valorant-win64-shipping', 'genshinimpact', 'cs2', 'r5apex', 'gta5'],
    source:
      'Min-Shung/Anti-addiction DetectGameProcess.java (FortniteClient-Win64-Shipping.exe, VALORANT-Win64-Shipping.exe, GenshinImpact.exe, cs2.exe, r5apex.exe, GTA5.exe)',
  },
];

/**
 * Not listed, on purpose: OneDrive. The personal and the business client are
 * one program (OneDrive.exe, signed by Microsoft, in the user's
 * AppData\Local\Microsoft\OneDrive), so no name, path, hash or signer tells
 * them apart, and Carrington allows OneDrive for Business. What does tell
 * them apart is the account: Microsoft's OneDrive policy "Prevent users from
 * synchronizing personal OneDrive accounts" (DisablePersonalSync, set by the
 * NCSC's device security guidance too: ukncsc/Device-Security-Guidance-
 * Configuration-Packs issue 22), and the SyncRootManager registry keys named
 * `...!Personal` (stevencohn/WindowsPowerShell Enable-PersonalOneDrive.ps1).
 * Setting that policy belongs to the Windows installer, not to this rule.
 */
export const NOT_LISTED = {
  onedrive:
    'OneDrive personal and OneDrive for Business are the same OneDrive.exe; use the DisablePersonalSync policy (Microsoft OneDrive policies; NCSC device security guidance), not a process rule',
} as const;

/** One category's match: the entry that named the process. */
export interface CatalogueHit {
  entry: CatalogueEntry;
  category: SoftwareCategory;
}

interface Index {
  byName: Map<string, CatalogueEntry[]>;
  patterns: CatalogueEntry[];
}

const indexes = new WeakMap<readonly CatalogueEntry[], Map<Platform, Index>>();

function indexFor(catalogue: readonly CatalogueEntry[], platform: Platform): Index {
  let perPlatform = indexes.get(catalogue);
  if (!perPlatform) {
    perPlatform = new Map();
    indexes.set(catalogue, perPlatform);
  }
  const found = perPlatform.get(platform);
  if (found) return found;
  const byName = new Map<string, CatalogueEntry[]>();
  const patterns: CatalogueEntry[] = [];
  for (const entry of catalogue) {
    for (const raw of [...(entry.names ?? []), ...(entry[platform] ?? [])]) {
      const key = normaliseName(raw);
      const list = byName.get(key) ?? [];
      if (!list.includes(entry)) list.push(entry);
      byName.set(key, list);
    }
    if (entry.namePatterns?.length) patterns.push(entry);
  }
  const index = { byName, patterns };
  perPlatform.set(platform, index);
  return index;
}

/** Linux truncates comm to 15 bytes: a comm that long may be the start of a longer listed name. */
const COMM_MAX = 15;

/**
 * The catalogue entries that name this process: by any of its normalised
 * names (the executable's, then a Linux comm, which may be truncated), and,
 * for entries that need it, by a folder in its path.
 */
export function catalogueHits(
  catalogue: readonly CatalogueEntry[],
  platform: Platform,
  names: readonly string[],
  normalisedPath: string | undefined,
  lowerPath: string | undefined,
): CatalogueHit[] {
  const index = indexFor(catalogue, platform);
  const found = new Set<CatalogueEntry>();
  for (const name of names) {
    for (const e of index.byName.get(name) ?? []) found.add(e);
    for (const e of index.patterns) if (e.namePatterns!.some((re) => re.test(name))) found.add(e);
    if (name.length === COMM_MAX && normalisedPath === undefined) {
      for (const [listed, entries] of index.byName) if (listed.length > COMM_MAX && listed.startsWith(name)) for (const e of entries) found.add(e);
    }
  }
  const hits: CatalogueHit[] = [];
  for (const entry of found) {
    if (entry.pathContains && !(lowerPath !== undefined && entry.pathContains.some((f) => lowerPath.includes(f)))) continue;
    hits.push({ entry, category: entry.category });
  }
  return hits;
}
