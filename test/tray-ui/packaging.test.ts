import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { TOOLTIPS } from '../../tray-ui/main/tray-app';
import { parsePlist } from '../../agent/os/darwin/plist';

const root = join(__dirname, '..', '..');
// electron-builder's own configuration check: the schema it refuses to package without.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as {
  validateConfiguration(config: unknown, debug: unknown): Promise<void>;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { DebugLogger } = require('builder-util/out/DebugLogger') as { DebugLogger: new (enabled: boolean) => unknown };

const config = load(readFileSync(join(root, 'electron-builder.yml'), 'utf8')) as Record<string, unknown> & {
  productName: string;
  linux: { executableName: string };
  electronFuses: Record<string, boolean>;
  extraMetadata: { main: string };
  files: string[];
};

/** Width and height from a PNG's IHDR chunk, or undefined when the bytes are not a PNG. */
function pngSize(bytes: Buffer): { width: number; height: number } | undefined {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (!bytes.subarray(0, 8).equals(signature) || bytes.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

describe('packaging the tray', () => {
  it("passes electron-builder's own configuration check", async () => {
    await expect(validateConfiguration(config, new DebugLogger(false))).resolves.toBeUndefined();
  });

  it('would be refused by that check with a mistyped fuse, so the check above means something', async () => {
    const mistyped = { ...config, electronFuses: { ...config.electronFuses, runAsNodee: false } };
    await expect(validateConfiguration(mistyped, new DebugLogger(false))).rejects.toThrow(/electronFuses/);
  });

  it('flips the fuses that would let a pupil use the tray as a Node interpreter, and loads code only from the checked archive', () => {
    expect(config.asar).toBe(true);
    expect(config.electronFuses).toMatchObject({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      onlyLoadAppFromAsar: true,
      enableEmbeddedAsarIntegrityValidation: true,
    });
  });

  it('starts the tray, which the build has produced, and leaves the native modules the tray does not use out', () => {
    expect(config.extraMetadata.main).toBe('dist/tray-ui/main/index.js');
    expect(existsSync(join(root, config.extraMetadata.main))).toBe(true);
    expect(config.files).toContain('dist/tray-ui/**');
    expect(config.files.join(' ')).toMatch(/!node_modules\/\{better-sqlite3,[^}]*usb/);
    expect(config.npmRebuild).toBe(false);
  });

  it('has an icon for each state the tray shows, at 1x and 2x, different from one another, copied into the build', () => {
    const states = Object.keys(TOOLTIPS);
    expect(states).toEqual(['protected', 'attention', 'disconnected']);
    const seen = new Set<string>();
    for (const state of states) {
      for (const [file, size] of [
        [`${state}.png`, 32],
        [`${state}@2x.png`, 64],
      ] as const) {
        const bytes = readFileSync(join(root, 'tray-ui', 'icons', file));
        expect({ file, size: pngSize(bytes) }).toEqual({ file, size: { width: size, height: size } });
        expect(readFileSync(join(root, 'dist', 'tray-ui', 'icons', file)).equals(bytes)).toBe(true);
        seen.add(bytes.toString('base64'));
      }
    }
    expect(seen.size).toBe(6);
    expect(pngSize(readFileSync(join(root, 'tray-ui', 'build', 'icon.png')))).toEqual({ width: 512, height: 512 });
  });

  it("is started at every user's login on each OS, from where each package puts it", () => {
    // Linux: XDG autostart, read by every desktop at login.
    const desktop = readFileSync(join(root, 'installer', 'linux', 'invigilator-tray.desktop'), 'utf8');
    const entry = Object.fromEntries(
      desktop
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(desktop.startsWith('[Desktop Entry]\n')).toBe(true);
    expect(entry).toMatchObject({ Type: 'Application', Exec: `/opt/${config.productName}/${config.linux.executableName}`, NoDisplay: 'true' });

    // macOS: a LaunchAgent in every GUI login, restarted if it crashes.
    const plist = parsePlist(readFileSync(join(root, 'installer', 'darwin', 'org.invigilator.tray.plist'), 'utf8'));
    expect(Object.fromEntries(plist as Map<string, unknown>)).toMatchObject({
      Label: 'org.invigilator.tray',
      ProgramArguments: [`/Applications/${config.productName}.app/Contents/MacOS/${config.productName}`],
      LimitLoadToSessionType: 'Aqua',
      RunAtLoad: true,
    });

    // Windows: the machine-wide Run key, which a pupil cannot edit.
    const reg = readFileSync(join(root, 'installer', 'win32', 'tray-autostart.reg'), 'utf8');
    expect(reg).toContain('[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run]');
    expect(reg).toContain(`"Invigilator"="\\"C:\\\\Program Files\\\\${config.productName}\\\\${config.productName}.exe\\""`);
  });
});
