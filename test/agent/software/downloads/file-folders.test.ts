import { parseXdgUserDirs, watchedFolders, isInside } from '../../../../agent/software/downloads/file-folders';
import { DARWIN_DOWNLOADS } from '../../../../agent/software/downloads/darwin/folders';
import { LINUX_DOWNLOADS } from '../../../../agent/software/downloads/linux/folders';
import { WIN32_DOWNLOADS } from '../../../../agent/software/downloads/win32/folders';

/** Each OS's facts, as cli/software-for.ts chooses them. */
const OS = { linux: LINUX_DOWNLOADS, darwin: DARWIN_DOWNLOADS, win32: WIN32_DOWNLOADS } as const;

const brief = (folders: ReturnType<typeof watchedFolders>) => folders.map((f) => [f.path, f.depth, f.owner ?? null]);

describe('watchedFolders', () => {
  it('Linux: each signed-in user’s Downloads, Desktop and ~/.local/bin, then /tmp, /var/tmp, /opt and /usr/local/bin', () => {
    const folders = watchedFolders({
      os: OS.linux,
      users: [
        { uid: 1001, home: '/home/amy' },
        { uid: 1002, home: '/home/ben', downloads: '/home/ben/Téléchargements', desktop: '/home/ben/Bureau' },
      ],
      env: {},
    });
    expect(brief(folders)).toEqual([
      ['/home/amy/Downloads', 3, 1001],
      ['/home/amy/Desktop', 3, 1001],
      ['/home/amy/.local/bin', 0, 1001],
      ['/home/ben/Téléchargements', 3, 1002],
      ['/home/ben/Bureau', 3, 1002],
      ['/home/ben/.local/bin', 0, 1002],
      ['/tmp', 1, null],
      ['/var/tmp', 1, null],
      ['/opt', 2, null],
      ['/usr/local/bin', 0, null],
    ]);
    expect(folders[0]).toMatchObject({ purpose: 'downloads', confineTo: '/home/amy' });
    expect(folders[6]).not.toHaveProperty('confineTo');
  });

  it('Linux: nobody signed in leaves the shared folders; an override outside the home is ignored', () => {
    expect(brief(watchedFolders({ os: OS.linux, users: [], env: {} })).map((r) => r[0])).toEqual(['/tmp', '/var/tmp', '/opt', '/usr/local/bin']);
    const folders = watchedFolders({
      os: OS.linux,
      users: [{ uid: 1001, home: '/home/amy', downloads: '/etc', desktop: '/home/amy/../ben/Desktop' }],
      env: {},
    });
    expect(folders.slice(0, 2).map((f) => f.path)).toEqual(['/home/amy/Downloads', '/home/amy/Desktop']);
  });

  it('Linux: a relative home is skipped and duplicates are listed once', () => {
    const folders = watchedFolders({
      os: OS.linux,
      users: [
        { uid: 1, home: 'relative' },
        { uid: 1001, home: '/tmp/amy', downloads: '/tmp/amy/Desktop' },
      ],
      env: {},
    });
    expect(folders.map((f) => f.path)).toEqual(['/tmp/amy/Desktop', '/tmp/amy/.local/bin', '/tmp', '/var/tmp', '/opt', '/usr/local/bin']);
  });

  it('Windows: per user Downloads, Desktop, %TEMP% and %LOCALAPPDATA%\\Programs; then the service %TEMP% and both Program Files', () => {
    const folders = watchedFolders({
      os: OS.win32,
      users: [
        { uid: 2, home: 'C:\\Users\\amy' },
        { uid: 3, home: 'C:\\Users\\ben', localAppData: 'C:\\Users\\ben\\AppData\\Local', temp: 'C:\\Users\\ben\\AppData\\Local\\Temp\\2' },
      ],
      env: { TEMP: 'C:\\Windows\\SystemTemp', ProgramFiles: 'C:\\Program Files', 'ProgramFiles(x86)': 'C:\\Program Files (x86)', SystemDrive: 'C:' },
    });
    expect(brief(folders)).toEqual([
      ['C:\\Users\\amy\\Downloads', 3, 2],
      ['C:\\Users\\amy\\Desktop', 3, 2],
      ['C:\\Users\\amy\\AppData\\Local\\Temp', 1, 2],
      ['C:\\Users\\amy\\AppData\\Local\\Programs', 2, 2],
      ['C:\\Users\\ben\\Downloads', 3, 3],
      ['C:\\Users\\ben\\Desktop', 3, 3],
      ['C:\\Users\\ben\\AppData\\Local\\Temp\\2', 1, 3],
      ['C:\\Users\\ben\\AppData\\Local\\Programs', 2, 3],
      ['C:\\Windows\\SystemTemp', 1, null],
      ['C:\\Program Files', 2, null],
      ['C:\\Program Files (x86)', 2, null],
    ]);
  });

  it('Windows: Program Files from the system drive when the environment does not say; paths compare without case', () => {
    const folders = watchedFolders({
      os: OS.win32,
      users: [{ uid: 1, home: 'D:\\Users\\amy', downloads: 'd:\\users\\AMY\\Desktop' }],
      env: { SystemDrive: 'D:' },
    });
    expect(folders.map((f) => f.path)).toEqual([
      'd:\\users\\AMY\\Desktop',
      'D:\\Users\\amy\\AppData\\Local\\Temp',
      'D:\\Users\\amy\\AppData\\Local\\Programs',
      'D:\\Program Files',
      'D:\\Program Files (x86)',
    ]);
  });

  it('macOS: ~/Downloads, ~/Desktop, ~/Applications, /Applications and /private/tmp (what /tmp links to)', () => {
    const folders = watchedFolders({ os: OS.darwin, users: [{ uid: 501, home: '/Users/amy' }], env: {} });
    expect(brief(folders)).toEqual([
      ['/Users/amy/Downloads', 3, 501],
      ['/Users/amy/Desktop', 3, 501],
      ['/Users/amy/Applications', 0, 501],
      ['/Applications', 0, null],
      ['/private/tmp', 1, null],
    ]);
  });
});

describe('parseXdgUserDirs', () => {
  it('reads the download and desktop folders inside the home, and nothing outside it', () => {
    const text = [
      '# written by xdg-user-dirs-update',
      'XDG_DESKTOP_DIR="$HOME/Bureau"',
      'XDG_DOWNLOAD_DIR="$HOME/Téléchargements"',
      'XDG_MUSIC_DIR="$HOME/Musique"',
    ].join('\n');
    expect(parseXdgUserDirs(text, '/home/amy')).toEqual({ desktop: '/home/amy/Bureau', downloads: '/home/amy/Téléchargements' });
    expect(parseXdgUserDirs('XDG_DOWNLOAD_DIR="/etc"\nXDG_DESKTOP_DIR="$HOME/../ben"', '/home/amy')).toEqual({});
    expect(parseXdgUserDirs('XDG_DOWNLOAD_DIR="$HOME/"', '/home/amy')).toEqual({});
    expect(parseXdgUserDirs('garbage\n\u0000\nXDG_DOWNLOAD_DIR=unquoted', '/home/amy')).toEqual({});
  });
});

describe('isInside', () => {
  it.each([
    ['linux', '/home/amy', '/home/amy/Downloads', true],
    ['linux', '/home/amy', '/home/amyx', false],
    ['linux', '/home/amy', '/home/AMY/x', false],
    ['darwin', '/Users/amy', '/users/AMY/x', true],
    ['win32', 'C:\\Users\\amy', 'c:\\users\\amy\\Downloads', true],
    ['win32', 'C:\\Users\\amy', 'C:\\Users\\ben', false],
  ] as const)('%s: %s contains %s: %s', (platform, parent, child, inside) => expect(isInside(OS[platform].paths, parent, child)).toBe(inside));
});
