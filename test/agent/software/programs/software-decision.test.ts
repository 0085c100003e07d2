import { CATALOGUE, type CatalogueEntry, catalogueHits } from '../../../../agent/software/catalogue';
import { criticalNames, failsafeReason } from '../../../../agent/software/programs/process-failsafe';
import { globToRegExp, normaliseName } from '../../../../agent/software/programs/process-match';
import { type ProcessFacts, type SoftwareDecisionInput, decideSoftware, isOsPath, needsHash } from '../../../../agent/software/programs/software-decision';
import { settingsFor } from '../../../../shared/policy/resolve';
import { preset } from '../../../../shared/policy/presets';
import { type SoftwareSettings, softwareSettings } from '../../../../shared/policy/schema';
import type { Platform } from '../../../../shared/protocol/primitives';

const basildon = settingsFor(preset('basildon-primary')!, 'software', 'pupil');
const carrington = settingsFor(preset('carrington-infant')!, 'software', 'pupil');
const AGENT_PID = 4242;
const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);

/** A policy section built on Basildon's, checked against the schema so no test decides on a section a school could not write. */
function custom(overrides: Partial<SoftwareSettings>): SoftwareSettings {
  const s = { ...basildon, ...overrides };
  expect(softwareSettings.safeParse(s).success).toBe(true);
  return s;
}

function decide(platform: Platform, settings: SoftwareSettings, process: Partial<ProcessFacts> & { name: string }, extra: Partial<SoftwareDecisionInput> = {}) {
  return decideSoftware({ process: { pid: 5000, ppid: 1000, ...process }, settings, platform, self: { pids: new Set([AGENT_PID]) }, ...extra });
}

const withRules = custom({
  rules: [
    { id: 'by-name', match: { name: 'game.exe' }, action: 'notify', note: 'a name', clause: 'bps-program-files' },
    { id: 'by-path', match: { pathPattern: 'C:\\Users\\*\\Downloads\\**' }, action: 'report', note: 'a folder', clause: 'bps-program-files' },
    { id: 'by-signer', match: { signer: 'Evil Games Ltd' }, action: 'terminate', note: 'a publisher', clause: 'bps-program-files' },
    { id: 'by-hash', match: { sha256: HASH_A }, category: 'hacking-tool', action: 'terminate', note: 'one file', clause: 'bps-hacking-tools' },
    { id: 'tor-report', match: { name: 'tor.exe' }, action: 'report', note: 'reported, not stopped', clause: 'bps-bypass-controls' },
  ],
});

describe('the software rule', () => {
  describe('precedence: explicit rules (hash > signer > path > name), then categories, then the allowlist', () => {
    const downloads = 'C:\\Users\\amy\\Downloads\\game.exe';
    it.each([
      // [what, platform, process facts, expected ruleId, expected action, matchedBy]
      ['a name rule', 'win32', { name: 'game.exe', path: 'C:\\Games\\game.exe' }, 'by-name', 'notify', 'name'],
      ['a path rule beats a name rule', 'win32', { name: 'game.exe', path: downloads }, 'by-path', 'report', 'path'],
      ['a signer rule beats a path rule', 'win32', { name: 'game.exe', path: downloads, signer: 'Evil Games Ltd' }, 'by-signer', 'terminate', 'signer'],
      [
        'a hash rule beats a signer rule',
        'win32',
        { name: 'game.exe', path: downloads, signer: 'Evil Games Ltd', sha256: HASH_A },
        'by-hash',
        'terminate',
        'sha256',
      ],
      [
        'a hash rule catches a renamed copy',
        'win32',
        { name: 'notepad.exe', path: 'C:\\Users\\amy\\Desktop\\notepad.exe', sha256: HASH_A },
        'by-hash',
        'terminate',
        'sha256',
      ],
      [
        'another hash is not that file',
        'win32',
        { name: 'notepad.exe', path: 'C:\\Users\\amy\\Desktop\\notepad.exe', sha256: HASH_B },
        'none',
        'none',
        undefined,
      ],
      [
        'an explicit rule beats the category (tor is a filter-bypass tool)',
        'win32',
        { name: 'tor.exe', path: 'C:\\Tor\\tor.exe' },
        'tor-report',
        'report',
        'name',
      ],
      ['the category when no rule names it', 'linux', { name: 'wireshark', path: '/usr/bin/wireshark' }, 'cat-hacking-tool', 'terminate', 'catalogue'],
      [
        'case and .exe do not matter',
        'win32',
        { name: 'WIRESHARK.EXE', path: 'C:\\Program Files\\Wireshark\\Wireshark.exe' },
        'cat-hacking-tool',
        'terminate',
        'catalogue',
      ],
      ['nothing named: left alone in denylist mode', 'linux', { name: 'gimp', path: '/home/amy/gimp' }, 'none', 'none', undefined],
    ] as const)('%s', (_what, platform, facts, ruleId, action, matchedBy) => {
      const outcome = decide(platform, withRules, facts);
      expect(outcome).toMatchObject({ ruleId, action, audit: false });
      expect(outcome.matchedBy).toBe(matchedBy);
    });

    it('a rule must hold on every field it names: a name and signer rule does not match an unsigned copy', () => {
      const s = custom({
        rules: [{ id: 'ms-only', match: { name: 'x.exe', signer: 'Microsoft Corporation' }, action: 'terminate', note: '', clause: 'bps-installation' }],
      });
      expect(decide('win32', s, { name: 'x.exe', path: 'C:\\x.exe' }).ruleId).toBe('none');
      expect(decide('win32', s, { name: 'x.exe', path: 'C:\\x.exe', signer: 'microsoft corporation' }).ruleId).toBe('ms-only');
    });

    it('among rules of the same strength the first in the policy wins', () => {
      const s = custom({
        rules: [
          { id: 'first', match: { name: 'x' }, action: 'report', note: '', clause: 'bps-installation' },
          { id: 'second', match: { name: 'x' }, action: 'terminate', note: '', clause: 'bps-installation' },
        ],
      });
      expect(decide('linux', s, { name: 'x', path: '/tmp/x' }).ruleId).toBe('first');
    });

    it('cites the clause of the rule or category that decided', () => {
      expect(decide('linux', basildon, { name: 'tor', path: '/usr/bin/tor' })).toMatchObject({ category: 'filter-bypass', clause: 'bps-bypass-controls' });
      expect(decide('linux', basildon, { name: 'bleachbit', path: '/usr/bin/bleachbit' })).toMatchObject({ clause: 'bps-hacking-tools' });
    });
  });

  describe('categories', () => {
    it('acts only on the categories the policy names: games are not in Basildon, Dropbox only in Carrington', () => {
      expect(decide('win32', basildon, { name: 'steam.exe', path: 'C:\\Program Files (x86)\\Steam\\steam.exe' }).action).toBe('none');
      expect(decide('win32', basildon, { name: 'Dropbox.exe', path: 'C:\\Program Files (x86)\\Dropbox\\Client\\Dropbox.exe' }).action).toBe('none');
      expect(decide('win32', carrington, { name: 'Dropbox.exe', path: 'C:\\Program Files (x86)\\Dropbox\\Client\\Dropbox.exe' })).toMatchObject({
        ruleId: 'cat-personal-cloud-storage',
        action: 'terminate',
        clause: 'cis-cloud-storage',
        entryId: 'dropbox',
      });
    });

    it('a Linux shebang script is matched by its comm: bleachbit runs as python3', () => {
      expect(decide('linux', basildon, { name: 'python3', otherNames: ['bleachbit'], path: '/usr/bin/python3.12' })).toMatchObject({
        ruleId: 'cat-evidence-elimination',
      });
    });

    it("Tor Browser's firefox is caught by its folder, an ordinary Firefox is not", () => {
      expect(decide('win32', basildon, { name: 'firefox.exe', path: 'C:\\Users\\amy\\Desktop\\Tor Browser\\Browser\\firefox.exe' }).entryId).toBe(
        'tor-browser',
      );
      expect(decide('linux', basildon, { name: 'firefox', path: '/home/amy/tor-browser/Browser/firefox.real' }).entryId).toBe('tor-browser');
      expect(decide('win32', basildon, { name: 'firefox.exe', path: 'C:\\Program Files\\Mozilla Firefox\\firefox.exe' }).action).toBe('none');
    });

    it('OneDrive is in no category: personal and business are the same program', () => {
      expect(decide('win32', carrington, { name: 'OneDrive.exe', path: 'C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe' }).action).toBe('none');
    });

    it('in several categories, the strongest action wins', () => {
      const entries: CatalogueEntry[] = [
        { id: 'a', label: 'A', category: 'game', names: ['both'], source: 'test' },
        { id: 'b', label: 'B', category: 'hacking-tool', names: ['both'], source: 'test' },
      ];
      const s = custom({
        categories: { game: { action: 'terminate', clause: 'bps-installation' }, 'hacking-tool': { action: 'report', clause: 'bps-hacking-tools' } },
      });
      expect(decide('linux', s, { name: 'both', path: '/tmp/both' }, { catalogue: entries })).toMatchObject({ category: 'game', action: 'terminate' });
    });
  });

  describe('allowlist mode (Carrington: "Only programmes provided or approved by the school")', () => {
    it.each([
      ['a program in a user folder is stopped', 'win32', { name: 'game.exe', path: 'C:\\Users\\amy\\Downloads\\game.exe' }, 'unapproved'],
      ['the OS and what the school installed are approved', 'win32', { name: 'notepad.exe', path: 'C:\\Windows\\System32\\notepad.exe' }, 'none'],
      ['Program Files is approved', 'win32', { name: 'winword.exe', path: 'C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE' }, 'none'],
      ['a user-writable folder inside Windows is not', 'win32', { name: 'game.exe', path: 'C:\\Windows\\Temp\\game.exe' }, 'unapproved'],
      ['nor the printer colour folder', 'win32', { name: 'x.exe', path: 'C:\\Windows\\System32\\spool\\drivers\\color\\x.exe' }, 'unapproved'],
      ['an unresolved path proves nothing', 'win32', { name: 'x.exe', path: 'C:\\Program Files\\..\\Users\\amy\\x.exe' }, 'unapproved'],
      ['Linux: /usr is the OS', 'linux', { name: 'gimp', path: '/usr/bin/gimp' }, 'none'],
      ['Linux: a home folder is not', 'linux', { name: 'game', path: '/home/amy/game' }, 'unapproved'],
      ['macOS: /Applications needs an administrator', 'darwin', { name: 'Keynote', path: '/Applications/Keynote.app/Contents/MacOS/Keynote' }, 'none'],
      [
        'macOS: a translocated download is not approved',
        'darwin',
        { name: 'Game', path: '/private/var/folders/x/AppTranslocation/1/d/Game.app/Contents/MacOS/Game' },
        'unapproved',
      ],
      ['without a path nothing is known: not judged', 'win32', { name: 'game.exe' }, 'none'],
    ] as const)('%s', (_what, platform, facts, ruleId) => {
      const outcome = decide(platform, carrington, facts);
      expect(outcome.ruleId).toBe(ruleId);
      if (ruleId === 'unapproved') expect(outcome).toMatchObject({ category: 'unapproved', action: 'terminate', clause: 'cis-approved-programmes' });
    });

    it('an approved entry needs every field it names: OneDrive signed by Microsoft, not a game renamed OneDrive.exe', () => {
      const onedrive = 'C:\\Users\\amy\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe';
      expect(decide('win32', carrington, { name: 'OneDrive.exe', path: onedrive, signer: 'Microsoft Corporation' }).action).toBe('none');
      expect(decide('win32', carrington, { name: 'OneDrive.exe', path: onedrive }).ruleId).toBe('unapproved');
    });

    it('approval by name uses the executable, never a comm the process chose', () => {
      const s = { ...carrington, approved: [{ name: 'scratch' }] };
      expect(decide('linux', s, { name: 'scratch', path: '/home/amy/scratch' }).action).toBe('none');
      expect(decide('linux', s, { name: 'game', otherNames: ['scratch'], path: '/home/amy/game' }).ruleId).toBe('unapproved');
    });

    it('an approval does not override a category: approving Dropbox while prohibiting cloud storage is the prohibition', () => {
      const s = { ...carrington, approved: [{ name: 'Dropbox.exe' }] };
      expect(decide('win32', s, { name: 'Dropbox.exe', path: 'C:\\Users\\amy\\AppData\\Roaming\\Dropbox\\bin\\Dropbox.exe' }).ruleId).toBe(
        'cat-personal-cloud-storage',
      );
    });
  });

  describe('audit mode: judged as allowlist, nothing enforced', () => {
    const audit = { ...carrington, mode: 'audit' as const };
    it.each([
      ['a category', { name: 'mimikatz.exe', path: 'C:\\Users\\amy\\mimikatz.exe' }, 'cat-hacking-tool', 'terminate'],
      ['an unapproved program', { name: 'game.exe', path: 'C:\\Users\\amy\\game.exe' }, 'unapproved', 'terminate'],
      ['an approved one', { name: 'notepad.exe', path: 'C:\\Windows\\notepad.exe' }, 'none', 'none'],
    ] as const)('%s: reported with audit true and the action it would have had', (_what, facts, ruleId, action) => {
      expect(decide('win32', audit, facts)).toMatchObject({ ruleId, action, audit: true });
    });
  });

  describe('the failsafe: no policy can stop these', () => {
    const stopEverything = custom({
      mode: 'allowlist',
      rules: ['systemd', 'svchost.exe', 'explorer.exe', 'launchd', 'invigilator', 'invigilator-tray', 'node', 'WindowServer', 'kthreadd'].map((n, i) => ({
        id: `stop-${i}`,
        match: { name: n },
        action: 'terminate' as const,
        note: 'a policy that tries',
        clause: 'bps-installation',
      })),
    });

    it.each([
      ['the agent itself, whatever its name', 'linux', { pid: AGENT_PID, name: 'node', path: '/usr/bin/node' }, 'invigilator'],
      [
        "the agent's children",
        'win32',
        { pid: 7000, ppid: AGENT_PID, name: 'powershell.exe', path: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe' },
        'invigilator-child',
      ],
      ['the tray where it is installed (Linux)', 'linux', { name: 'invigilator-tray', path: '/opt/Invigilator/invigilator-tray' }, 'invigilator-app'],
      [
        'the tray where it is installed (Windows)',
        'win32',
        { name: 'Invigilator.exe', path: 'C:\\Program Files\\Invigilator\\Invigilator.exe' },
        'invigilator-app',
      ],
      [
        'the tray where it is installed (macOS)',
        'darwin',
        { name: 'Invigilator', path: '/Applications/Invigilator.app/Contents/MacOS/Invigilator' },
        'invigilator-app',
      ],
      ['PID 1', 'linux', { pid: 1, ppid: 0, name: 'systemd', path: '/usr/lib/systemd/systemd' }, 'init'],
      ['kthreadd', 'linux', { pid: 2, ppid: 0, name: 'kthreadd' }, 'kernel'],
      ['a kernel thread', 'linux', { pid: 77, ppid: 2, name: 'kworker/0:1' }, 'kernel'],
      ['a kernel thread by its flag', 'linux', { pid: 78, ppid: 5, name: 'x', kernelThread: true }, 'kernel'],
      ['systemd --user in its folder', 'linux', { name: 'systemd', path: '/usr/lib/systemd/systemd' }, 'os-critical'],
      ['svchost in System32', 'win32', { name: 'svchost.exe', path: 'C:\\Windows\\System32\\svchost.exe' }, 'os-critical'],
      ['explorer in Windows', 'win32', { name: 'explorer.exe', path: 'C:\\Windows\\explorer.exe' }, 'os-critical'],
      ['System (pid 4)', 'win32', { pid: 4, ppid: 0, name: 'System' }, 'os-critical'],
      ['a protected process the OS gave no path for', 'win32', { name: 'csrss.exe' }, 'os-critical'],
      [
        'WindowServer under /System',
        'darwin',
        { name: 'WindowServer', path: '/System/Library/PrivateFrameworks/SkyLight.framework/Versions/A/Resources/WindowServer' },
        'os-critical',
      ],
    ] as const)('%s', (_what, platform, facts, spared) => {
      expect(decide(platform, stopEverything, facts)).toMatchObject({ ruleId: 'failsafe', action: 'none', spared });
    });

    it.each([
      ['a keylogger named svchost.exe in Downloads', 'win32', { name: 'svchost.exe', path: 'C:\\Users\\amy\\Downloads\\svchost.exe' }],
      [
        'svchost.exe in a user-writable folder inside System32',
        'win32',
        { name: 'svchost.exe', path: 'C:\\Windows\\System32\\spool\\drivers\\color\\svchost.exe' },
      ],
      ['a copy named systemd in /tmp', 'linux', { name: 'systemd', path: '/tmp/x/systemd' }],
      ['a copy named like the tray outside its install folder', 'linux', { name: 'invigilator-tray', path: '/home/amy/invigilator-tray' }],
      ['a fake System.exe (the real one has no file)', 'win32', { name: 'System.exe', path: 'C:\\Users\\amy\\System.exe' }],
      ['a copy named launchd in a user folder', 'darwin', { name: 'launchd', path: '/Users/amy/launchd' }],
      [
        'a path with .. that only looks like the install folder',
        'linux',
        { name: 'invigilator-tray', path: '/opt/Invigilator/../../home/amy/invigilator-tray' },
      ],
    ] as const)('not spared: %s', (_what, platform, facts) => {
      const outcome = decide(platform, stopEverything, facts);
      expect(outcome.ruleId).not.toBe('failsafe');
      expect(outcome.action).toBe('terminate');
    });

    it('lists the OS-critical programs of every OS', () => {
      expect(criticalNames('win32')).toEqual(expect.arrayContaining(['smss', 'csrss', 'wininit', 'winlogon', 'services', 'lsass', 'svchost', 'explorer']));
      expect(criticalNames('linux')).toEqual(expect.arrayContaining(['systemd', 'init', 'xorg', 'gnome-shell', 'plasmashell', 'sshd']));
      expect(criticalNames('darwin')).toEqual(expect.arrayContaining(['launchd', 'windowserver', 'loginwindow', 'kernel_task']));
      expect(failsafeReason({ pid: 0, ppid: 0, name: 'kernel_task' }, 'darwin', { pids: new Set() })).toBe('init');
    });
  });

  describe('matching helpers', () => {
    it('normalises names', () => {
      expect(['C:\\Tools\\Tor.EXE', '/usr/bin/dumpcap', 'mimikatz.exe', '/tmp/x (deleted)'].map(normaliseName)).toEqual(['tor', 'dumpcap', 'mimikatz', 'x']);
    });
    it('globs: * stays in a folder, ** crosses folders', () => {
      const re = globToRegExp('C:\\Users\\*\\Downloads\\**', 'win32');
      expect(re.test('c:/users/amy/downloads/a/b/c.exe')).toBe(true);
      expect(re.test('c:/users/amy/x/downloads/c.exe')).toBe(false);
      expect(globToRegExp('/home/*/bin/*', 'linux').test('/home/amy/bin/sub/x')).toBe(false);
      expect(globToRegExp('/opt/**/x', 'linux').test('/opt/x')).toBe(true);
      expect(globToRegExp('/opt/a+b(1).[x]', 'linux').test('/opt/a+b(1).[x]')).toBe(true);
    });
    it('tells OS folders from user folders', () => {
      expect(isOsPath('C:\\Windows\\System32\\cmd.exe', 'win32')).toBe(true);
      expect(isOsPath('C:\\Windows\\Tasks\\x.exe', 'win32')).toBe(false);
      expect(isOsPath('/usr/local/bin/x', 'linux')).toBe(true);
      expect(isOsPath('/tmp/x', 'linux')).toBe(false);
    });
    it('says when a hash is needed', () => {
      expect(needsHash(basildon)).toBe(false);
      expect(needsHash(withRules)).toBe(true);
    });
  });
});

describe('the catalogue', () => {
  it('covers every category and says where each entry comes from', () => {
    const categories = new Set(CATALOGUE.map((e) => e.category));
    expect([...categories].sort()).toEqual(['evidence-elimination', 'filter-bypass', 'game', 'hacking-tool', 'personal-cloud-storage']);
    for (const e of CATALOGUE) {
      expect(e.source.length).toBeGreaterThan(10);
      expect(e.id).toMatch(/^[a-z0-9-]+$/);
      const names = [...(e.names ?? []), ...(e.win32 ?? []), ...(e.linux ?? []), ...(e.darwin ?? [])];
      expect(names.length + (e.namePatterns?.length ?? 0)).toBeGreaterThan(0);
      // Listed names are already in the form they are compared in.
      for (const n of names) expect(normaliseName(n)).toBe(n);
    }
    expect(new Set(CATALOGUE.map((e) => e.id)).size).toBe(CATALOGUE.length);
  });

  it.each([
    ['linux', ['wireshark'], 'wireshark'],
    ['linux', ['dumpcap'], 'wireshark'],
    ['win32', ['googledrivefs'], 'google-drive'],
    ['win32', ['u1601'], 'ultrasurf'],
    ['win32', ['epicgameslauncher'], 'epic-games'],
    ['linux', ['python3', 'epicgameslaunch'], 'epic-games'],
    ['darwin', ['steam_osx'], 'steam'],
  ] as const)('on %s, %j is %s', (platform, names, id) => {
    const hits = catalogueHits(CATALOGUE, platform, names, undefined, undefined);
    expect(hits.map((h) => h.entry.id)).toContain(id);
  });

  it('does not list names that are not the program: an OS-only name on another OS, a plain "u", Box outside a Box folder', () => {
    expect(catalogueHits(CATALOGUE, 'linux', ['windump'], '/tmp/windump', '/tmp/windump')).toEqual([]);
    expect(catalogueHits(CATALOGUE, 'win32', ['u'], undefined, undefined)).toEqual([]);
    expect(catalogueHits(CATALOGUE, 'linux', ['box'], '/usr/bin/box', '/usr/bin/box')).toEqual([]);
    expect(catalogueHits(CATALOGUE, 'win32', ['box'], 'c:/program files/box/box/box.exe', 'c:/program files/box/box/box.exe').map((h) => h.entry.id)).toEqual([
      'box',
    ]);
  });
});

describe('an attempt to install (the installs setting)', () => {
  const staff = settingsFor(preset('basildon-primary')!, 'software', 'staff');

  it("acts on an installer a person runs, with the role's action and clause", () => {
    expect(decide('win32', basildon, { name: 'msiexec.exe', path: 'C:\\Windows\\System32\\msiexec.exe' }, { byPerson: true })).toMatchObject({
      ruleId: 'installs',
      category: 'installer',
      action: 'terminate',
      clause: 'bps-installation',
    });
    expect(decide('linux', basildon, { name: 'pip3', path: '/usr/bin/pip3' }, { byPerson: true })).toMatchObject({ ruleId: 'installs' });
    expect(
      decide('darwin', staff, { name: 'Installer', path: '/System/Library/CoreServices/Installer.app/Contents/MacOS/Installer' }, { byPerson: true }),
    ).toMatchObject({
      ruleId: 'installs',
      action: staff.installs.action,
    });
  });

  it("leaves the OS's and administrators' installers alone, and everything when the policy says ignore", () => {
    expect(decide('win32', basildon, { name: 'msiexec.exe', path: 'C:\\Windows\\System32\\msiexec.exe' }, { byPerson: false }).ruleId).toBe('none');
    expect(
      decide('linux', custom({ installs: { action: 'ignore', clause: 'bps-installation' } }), { name: 'pip', path: '/usr/bin/pip' }, { byPerson: true }).ruleId,
    ).toBe('none');
    // A per-application updater runs as the user too, and is not on the list.
    expect(
      decide('win32', basildon, { name: 'OneDriveSetup.exe', path: 'C:\\Program Files\\Microsoft OneDrive\\OneDriveSetup.exe' }, { byPerson: true }).ruleId,
    ).toBe('none');
  });
});

describe('what a loader, an interpreter or a private mount namespace cannot hide (issue 13, finding 5)', () => {
  const LOGIND = '/usr/lib/systemd/systemd-logind';
  const hashRule = custom({
    rules: [{ id: 'that-file', match: { sha256: HASH_A }, action: 'terminate', note: 'one file', clause: 'bps-hacking-tools' }],
  });

  it('a hash rule outranks the OS-critical folders, and nothing else the failsafe spares', () => {
    expect(decide('linux', hashRule, { name: 'systemd-logind', path: LOGIND, sha256: HASH_A })).toMatchObject({ ruleId: 'that-file', action: 'terminate' });
    expect(decide('linux', hashRule, { name: 'systemd-logind', path: LOGIND, sha256: HASH_B })).toMatchObject({ ruleId: 'failsafe', spared: 'os-critical' });
    // A name or path rule does not.
    const byName = custom({ rules: [{ id: 'n', match: { name: 'systemd-logind' }, action: 'terminate', note: 'a name', clause: 'bps-hacking-tools' }] });
    expect(decide('linux', byName, { name: 'systemd-logind', path: LOGIND })).toMatchObject({ ruleId: 'failsafe', spared: 'os-critical' });
    for (const [facts, spared] of [
      [{ pid: AGENT_PID, name: 'node', path: '/usr/bin/node', sha256: HASH_A }, 'invigilator'],
      [{ pid: 7000, ppid: AGENT_PID, name: 'udevadm', path: '/usr/bin/udevadm', sha256: HASH_A }, 'invigilator-child'],
      [{ pid: 1, ppid: 0, name: 'systemd', path: '/usr/lib/systemd/systemd', sha256: HASH_A }, 'init'],
      [{ pid: 78, ppid: 2, name: 'kworker/0:1', sha256: HASH_A }, 'kernel'],
      [{ name: 'invigilator-tray', path: '/opt/Invigilator/invigilator-tray', sha256: HASH_A }, 'invigilator-app'],
    ] as const) {
      expect(decide('linux', hashRule, facts)).toMatchObject({ ruleId: 'failsafe', spared });
    }
  });

  it('a path a private namespace made up spares nothing, approves nothing, and only a hash approval vouches for it', () => {
    const made = { mountNamespace: 'private', pathVouched: false } as const;
    expect(decide('linux', basildon, { name: 'systemd-logind', path: LOGIND, ...made }).ruleId).not.toBe('failsafe');
    expect(decide('linux', basildon, { name: 'invigilator-tray', path: '/opt/Invigilator/invigilator-tray', ...made }).ruleId).not.toBe('failsafe');
    expect(decide('linux', carrington, { name: 'free-game', path: '/usr/lib/systemd/free-game', ...made })).toMatchObject({ ruleId: 'unapproved' });
    const approved = custom({ mode: 'allowlist', approved: [{ pathPattern: '/usr/local/bin/*' }, { sha256: HASH_B }] });
    expect(decide('linux', approved, { name: 'scratch', path: '/usr/local/bin/scratch', ...made })).toMatchObject({ ruleId: 'unapproved' });
    expect(decide('linux', approved, { name: 'scratch', path: '/usr/local/bin/scratch' }).ruleId).toBe('none');
    expect(decide('linux', approved, { name: 'scratch', path: '/usr/local/bin/scratch', sha256: HASH_B, ...made }).ruleId).toBe('none');
    // The PID 1 and agent sparing are by pid, not by folder.
    expect(decide('linux', basildon, { pid: 1, ppid: 0, name: 'systemd', path: '/usr/lib/systemd/systemd', ...made })).toMatchObject({ spared: 'init' });
  });

  it("a person's program there is suspect under the role's privateMounts setting; root's, a vouched path's, and an ignoring role's are not", () => {
    const made = { name: 'homework', path: '/usr/local/bin/homework', mountNamespace: 'private', pathVouched: false } as const;
    expect(decide('linux', basildon, made, { byPerson: true })).toMatchObject({
      ruleId: 'private-mounts',
      category: 'private-mounts',
      action: 'terminate',
      clause: 'bps-bypass-controls',
    });
    const staff = settingsFor(preset('basildon-primary')!, 'software', 'staff');
    expect(decide('linux', staff, made, { byPerson: true })).toMatchObject({ ruleId: 'private-mounts', action: 'report' });
    expect(decide('linux', basildon, made, { byPerson: false }).ruleId).toBe('none');
    expect(decide('linux', basildon, { ...made, pathVouched: true }, { byPerson: true }).ruleId).toBe('none');
    expect(decide('linux', custom({ privateMounts: { action: 'ignore', clause: 'bps-bypass-controls' } }), made, { byPerson: true }).ruleId).toBe('none');
    expect(decide('linux', custom({ approved: [{ sha256: HASH_B }] }), { ...made, sha256: HASH_B }, { byPerson: true }).ruleId).toBe('none');
    // A category still names what it knows, and the allowlist still stops what it never approved.
    expect(decide('linux', basildon, { ...made, name: 'tshark' }, { byPerson: true })).toMatchObject({ ruleId: 'cat-hacking-tool' });
    expect(decide('linux', carrington, made, { byPerson: true })).toMatchObject({ ruleId: 'unapproved', action: 'terminate' });
    expect(needsHash(custom({ approved: [{ sha256: HASH_B }] }))).toBe(true);
  });

  it("an interpreter's script is matched by the rules, the categories' names and the installers, and approves nothing", () => {
    const rules = custom({
      rules: [
        { id: 'by-hash', match: { sha256: HASH_A }, action: 'terminate', note: 'a script', clause: 'bps-hacking-tools' },
        { id: 'by-path', match: { pathPattern: '/home/*/Downloads/**' }, action: 'report', note: 'a folder', clause: 'bps-program-files' },
      ],
    });
    const python = { name: 'python3.11', path: '/usr/bin/python3.11' };
    expect(decide('linux', rules, { ...python, script: { name: 'x.py', path: '/home/amy/x.py', sha256: HASH_A } })).toMatchObject({ ruleId: 'by-hash' });
    expect(decide('linux', rules, { ...python, script: { name: 'x.py', path: '/home/amy/Downloads/x.py' } })).toMatchObject({ ruleId: 'by-path' });
    expect(decide('linux', rules, { ...python, script: { name: 'x.py', path: '/home/amy/x.py', sha256: HASH_B } }).ruleId).toBe('none');
    expect(decide('linux', basildon, { ...python, script: { name: 'pip', path: '/usr/bin/pip' } }, { byPerson: true })).toMatchObject({ ruleId: 'installs' });
    expect(decide('linux', basildon, { name: 'perl', path: '/usr/bin/perl', script: { name: 'tshark', path: '/home/amy/tshark' } })).toMatchObject({
      ruleId: 'cat-hacking-tool',
    });
    // An approval by name is the executable's: a script called scratch approves nothing.
    const approved = custom({ mode: 'allowlist', approved: [{ name: 'scratch' }] });
    expect(decide('linux', approved, { name: 'game', path: '/home/amy/game', script: { name: 'scratch', path: '/home/amy/scratch' } })).toMatchObject({
      ruleId: 'unapproved',
    });
  });
});
