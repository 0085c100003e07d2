import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvigilatorError } from '../../../../../shared/errors';
import { EVENT_DATA } from '../../../../../shared/protocol/events';
import { BundleInventory, MAX_INFO_PLIST_BYTES, bundleInfo, bundleSource } from '../../../../../agent/software/installed/darwin/inventory-darwin';
import { RecordedCommands } from '../../../../../agent/os/recorded-commands';
import { INVENTORY_BUNDLES } from '../inventory-recording';
import { inventorySourceContract } from '../inventory-source-contract';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'inv-bundles-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** An `.app` folder whose Contents/Info.plist is one of the fixture files (or none). */
function bundle(path: string, plist?: string): void {
  mkdirSync(join(path, 'Contents', 'MacOS'), { recursive: true });
  if (plist) copyFileSync(join(INVENTORY_BUNDLES, plist), join(path, 'Contents', 'Info.plist'));
}

/** A Mac's folders, laid out for real: /Applications, a sub-folder of it, two users and Shared. */
function layOut(): { applications: string; users: string } {
  const applications = join(root, 'Applications');
  const users = join(root, 'Users');
  bundle(join(applications, 'Times Tables.app'), 'script-editor-applet.plist');
  bundle(join(applications, 'Scratch 3.app'), 'electron-app.plist');
  // Bundles inside bundles (helpers, login items) are not separate programs.
  bundle(join(applications, 'Scratch 3.app', 'Contents', 'Frameworks', 'Scratch 3 Helper.app'), 'display-name-only.plist');
  bundle(join(applications, 'Utilities', 'Digital Color Meter.app'), 'display-name-only.plist');
  bundle(join(applications, 'Burp.app'), 'no-name.plist');
  bundle(join(applications, 'Not A Bundle.app'));
  bundle(join(applications, '.Hidden.app'), 'electron-app.plist');
  symlinkSync(join(applications, 'Scratch 3.app'), join(applications, 'Linked.app'));
  bundle(join(users, 'amy', 'Applications', 'Hostile.app'), 'hostile-strings.plist');
  bundle(join(users, 'amy', 'Applications', 'Laughs.app'), 'entity-expansion.plist');
  bundle(join(users, 'amy', 'Applications', 'Garbage.app'), 'garbage.plist');
  mkdirSync(join(users, 'ben'), { recursive: true });
  bundle(join(users, 'Shared', 'Applications', 'Shared Thing.app'), 'electron-app.plist');
  return { applications, users };
}

describe('Info.plist', () => {
  it('gives CFBundleName and CFBundleShortVersionString, else the display name and CFBundleVersion, through the existing parser', () => {
    const read = (f: string) => bundleInfo(readFileSync(join(INVENTORY_BUNDLES, f), 'utf8'));
    expect(read('script-editor-applet.plist')).toEqual({ name: 'Times Tables', version: '1.0' });
    expect(read('electron-app.plist')).toEqual({ name: 'Scratch 3', version: '3.30.5' });
    expect(read('display-name-only.plist')).toEqual({ name: 'Digital Color Meter', version: '5.24' });
    expect(read('no-name.plist')).toEqual({});
    expect(read('entity-expansion.plist')).toBeUndefined();
    expect(read('garbage.plist')).toBeUndefined();
  });
});

describe('the macOS reader, on a real folder of .app bundles', () => {
  it('lists /Applications (one folder down, not inside bundles, no links, no hidden) and each user’s ~/Applications', async () => {
    const { applications, users } = layOut();
    const snapshot = await new BundleInventory({ systemFolders: [applications], usersRoot: users }).list();
    const amy = bundleSource(join(users, 'amy', 'Applications'));
    expect(snapshot.sources).toEqual([bundleSource(applications), amy, bundleSource(join(users, 'ben', 'Applications'))]);
    expect(snapshot.unread).toEqual([]);
    expect(snapshot.programs.filter((p) => p.source === bundleSource(applications))).toEqual([
      { name: 'Burp', source: bundleSource(applications) },
      { name: 'Scratch 3', version: '3.30.5', source: bundleSource(applications) },
      { name: 'Times Tables', version: '1.0', source: bundleSource(applications) },
      { name: 'Digital Color Meter', version: '5.24', source: bundleSource(applications) },
    ]);
    // The folder without an Info.plist is not a bundle anyone can launch.
    expect(snapshot.skipped).toBe(1);

    const amys = snapshot.programs.filter((p) => p.source === amy);
    // A plist the parser refuses (entities, garbage) still lists the bundle, by its folder's name.
    expect(amys.map((p) => p.name)).toEqual(['Garbage', '<img src=x onerror=alert(1)> [31m Game gnp.exe', 'Laughs']);
    const hostile = amys[1]!;
    expect(hostile.version).toHaveLength(256);
    for (const p of snapshot.programs) expect(EVENT_DATA['software.installed'].safeParse(p).success).toBe(true);
  });

  it('reads a binary Info.plist through plutil, and names it by its folder without plutil', async () => {
    const applications = join(root, 'Applications');
    bundle(join(applications, 'Binary.app'), 'binary.plist');
    const plist = join(applications, 'Binary.app', 'Contents', 'Info.plist');
    const xml = readFileSync(join(INVENTORY_BUNDLES, 'display-name-only.plist'), 'utf8').replace('Digital Color Meter', 'Binary App');
    const runner = new RecordedCommands().record('plutil', ['-convert', 'xml1', '-o', '-', '--', plist], { stdout: xml });
    const withPlutil = await new BundleInventory({ systemFolders: [applications], usersRoot: join(root, 'none'), runner }).list();
    expect(runner.calls).toEqual([{ file: 'plutil', args: ['-convert', 'xml1', '-o', '-', '--', plist] }]);
    expect(withPlutil.programs).toEqual([{ name: 'Binary App', version: '5.24', source: bundleSource(applications) }]);
    const without = await new BundleInventory({ systemFolders: [applications], usersRoot: join(root, 'none') }).list();
    expect(without.programs).toEqual([{ name: 'Binary', source: bundleSource(applications) }]);
    // A users root that cannot be listed is unread; /Applications still is read.
    expect(without.unread).toEqual([expect.objectContaining({ code: 'INV_ERR_INVENTORY_UNREADABLE' })]);
  });

  it('never blocks on a FIFO, never follows a linked Info.plist, and skips one over 1 MiB', async () => {
    const applications = join(root, 'Applications');
    bundle(join(applications, 'Fifo.app'));
    execFileSync('mkfifo', [join(applications, 'Fifo.app', 'Contents', 'Info.plist')]);
    bundle(join(applications, 'Linked Plist.app'));
    symlinkSync('/etc/passwd', join(applications, 'Linked Plist.app', 'Contents', 'Info.plist'));
    bundle(join(applications, 'Huge.app'));
    writeFileSync(join(applications, 'Huge.app', 'Contents', 'Info.plist'), Buffer.alloc(MAX_INFO_PLIST_BYTES + 1, 0x20));
    bundle(join(applications, 'Fine.app'), 'script-editor-applet.plist');
    const snapshot = await new BundleInventory({ systemFolders: [applications], usersRoot: join(root, 'Users') }).list();
    expect(snapshot.programs.map((p) => p.name)).toEqual(['Times Tables']);
    expect(snapshot.skipped).toBe(3);
  });

  it("leaves a user's folder unread when it is too full or cannot be listed, without losing anyone else's", async () => {
    const applications = join(root, 'Applications');
    const users = join(root, 'Users');
    bundle(join(applications, 'Fine.app'), 'script-editor-applet.plist');
    for (let i = 0; i < 5; i++) bundle(join(users, 'carl', 'Applications', `Junk ${i}.app`), 'no-name.plist');
    mkdirSync(join(users, 'dan'), { recursive: true });
    // A link to itself: listing it fails with ELOOP.
    symlinkSync('Applications', join(users, 'dan', 'Applications'));
    const snapshot = await new BundleInventory({ systemFolders: [applications], usersRoot: users, maxBundlesPerFolder: 3 }).list();
    expect(snapshot.sources).toEqual([bundleSource(applications)]);
    expect(snapshot.unread.map((u) => u.source).sort()).toEqual([
      bundleSource(join(users, 'carl', 'Applications')),
      bundleSource(join(users, 'dan', 'Applications')),
    ]);
    expect(snapshot.programs.map((p) => p.name)).toEqual(['Times Tables']);
  });

  it('fails with a code when no folder at all could be read', async () => {
    const applications = join(root, 'Applications');
    mkdirSync(root, { recursive: true });
    symlinkSync('Applications', applications);
    const error = await new BundleInventory({ systemFolders: [applications], usersRoot: join(root, 'none') }).list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvigilatorError);
    expect((error as InvigilatorError).code).toBe('INV_ERR_INVENTORY_UNREADABLE');
  });
});

/**
 * The contract on real folders of .app bundles laid out with the recorded
 * Info.plist files (test/fixtures/software/inventory-bundles, among them the
 * hostile one): a user's ~/Applications that is a link to itself cannot be
 * listed; an /Applications that cannot be listed, and no users, is nothing.
 */
inventorySourceContract('macOS (app bundles, recorded Info.plist)', async (scenario) => {
  if (scenario === 'nothing-readable') {
    const applications = join(root, 'Applications');
    symlinkSync('Applications', applications);
    return { source: new BundleInventory({ systemFolders: [applications], usersRoot: join(root, 'none') }) };
  }
  const { applications, users } = layOut();
  if (scenario === 'ordinary') return { source: new BundleInventory({ systemFolders: [applications], usersRoot: users }) };
  mkdirSync(join(users, 'dan'), { recursive: true });
  symlinkSync('Applications', join(users, 'dan', 'Applications'));
  return { source: new BundleInventory({ systemFolders: [applications], usersRoot: users }), unreadable: bundleSource(join(users, 'dan', 'Applications')) };
});
