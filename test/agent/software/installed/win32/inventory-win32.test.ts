import { InvigilatorError } from '../../../../../shared/errors';
import { EVENT_DATA } from '../../../../../shared/protocol/events';
import {
  MACHINE_KEYS,
  RegistryInventory,
  USERS_SCRIPT,
  inventoryScriptKind,
  inventoryScriptPath,
  parseKey,
  parseUsers,
  readKeyScript,
  userKey,
} from '../../../../../agent/software/installed/win32/inventory-win32';
import { frameScript, newMarker, readFramed } from '../../../../../agent/os/win32/powershell-session';
import { RecordedPowerShell, type RecordedAnswer } from '../../../../../agent/os/win32/recorded-powershell';
import { inventoryRecording } from '../inventory-recording';
import { inventorySourceContract } from '../inventory-source-contract';

const AMY = 'S-1-5-21-3623811015-3361044348-30300820-1013';
const HKLM = MACHINE_KEYS[0]!.path;
const WOW = MACHINE_KEYS[1]!.path;

/** A Windows that answers from recordings: which key a read script asks for decides the answer. */
function windows(answers: { users?: RecordedAnswer; keys: Record<string, RecordedAnswer> }): RecordedPowerShell {
  return new RecordedPowerShell((script) => {
    const kind = inventoryScriptKind(script);
    if (kind === 'users') return answers.users ?? inventoryRecording('win32-users.txt');
    const path = kind === 'read' ? inventoryScriptPath(script) : undefined;
    return path === undefined ? undefined : (answers.keys[path] ?? inventoryRecording('win32-key-absent.txt'));
  });
}

describe('the uninstall-key scripts', () => {
  it('read one key each, by literal path, and say which they are', () => {
    const script = readKeyScript(userKey(AMY).path);
    expect(inventoryScriptKind(script)).toBe('read');
    expect(inventoryScriptPath(script)).toBe(`Registry::HKEY_USERS\\${AMY}\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall`);
    expect(script).toContain('Get-ChildItem -LiteralPath $path');
    expect(script).toContain('Get-ItemProperty -LiteralPath $k.PSPath');
    expect(script).toContain('ConvertTo-Json');
    expect(inventoryScriptKind(USERS_SCRIPT)).toBe('users');
    // A quote in a path cannot end the literal (paths are ours, but the quoting holds anyway).
    expect(inventoryScriptPath(readKeyScript("HKLM:\\x'; Remove-Item C:\\ -Recurse; '"))).toBe("HKLM:\\x'; Remove-Item C:\\ -Recurse; '");
  });

  it('travel through the session framing whole, and the framed answer is what the parser reads', () => {
    const marker = newMarker();
    expect(frameScript(readKeyScript(HKLM), marker)).not.toContain('\n');
    const printed = `${inventoryRecording('win32-hklm.txt')}\n${marker}:ok\n`;
    const framed = readFramed(printed, marker);
    expect(framed.kind).toBe('ok');
    expect(parseKey((framed as { output: string }).output, 'registry:hklm').programs).toHaveLength(3);
  });
});

describe('uninstall-key output', () => {
  it('lists what Programs and Features shows: named entries, not system components, not updates of another entry', () => {
    const { programs, skipped } = parseKey(inventoryRecording('win32-hklm.txt'), 'registry:hklm');
    expect(programs).toEqual([
      { name: 'Microsoft .NET Runtime - 8.0.30 (arm64)', version: '64.120.56788', publisher: 'Microsoft Corporation', source: 'registry:hklm' },
      { name: 'Microsoft .NET Host - 8.0.30 (arm64)', version: '64.120.56788', publisher: 'Microsoft Corporation', source: 'registry:hklm' },
      { name: 'Microsoft .NET Host FX Resolver - 8.0.30 (arm64)', version: '64.120.56788', publisher: 'Microsoft Corporation', source: 'registry:hklm' },
    ]);
    expect(skipped).toBe(0);
  });

  it('reads Windows PowerShell 5.1 escaping and a DWORD printed as text', () => {
    expect(parseKey(inventoryRecording('win32-hku-user.txt'), 'registry:hku:x').programs).toEqual([
      { name: 'Zoom Workplace', version: '6.0.11 (39959)', publisher: 'Zoom Video Communications, Inc.', source: 'registry:hku:x' },
      { name: 'Roblox Player for amy', publisher: 'Roblox Corporation', source: 'registry:hku:x' },
    ]);
  });

  it('makes hostile values plain text within the schema, and skips what has no name left', () => {
    const { programs, skipped } = parseKey(inventoryRecording('win32-hku-hostile.txt'), 'registry:hku:x');
    const names = programs.map((p) => p.name);
    expect(names).toEqual([
      '<script>alert(1)</script>',
      'Calc ulator [31m',
      'exe. txt.Homework',
      'Line Break',
      'Lone \ufffd surrogate',
      'A'.repeat(256),
      '12345',
      'Proto Pollution Test',
    ]);
    // Markup stays text (it is rendered as text everywhere); only controls, bidi and broken surrogates go.
    expect(programs[0]).toEqual({ name: '<script>alert(1)</script>', version: '1.0', publisher: '<b>Evil</b> & Co', source: 'registry:hku:x' });
    expect(programs[1]).toEqual({ name: 'Calc ulator [31m', version: '2.0', publisher: 'Tab and newline', source: 'registry:hku:x' });
    expect(programs[5]!.version).toHaveLength(256);
    expect(programs[6]!.version).toBe('6');
    // The blank name and the entry that is not an object.
    expect(skipped).toBe(2);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    for (const p of programs) expect(EVENT_DATA['software.installed'].safeParse(p).success).toBe(true);
  });

  it('refuses what is not its answer with a code, never an exception of another kind', () => {
    for (const output of ['', 'garbage', '[1,2,3]', '{"exists":"yes"}', '{"exists":true,"tooMany":25000,"entries":[]}', '{'.repeat(100_000)]) {
      let error: unknown;
      try {
        parseKey(output, 'registry:hklm');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvigilatorError);
      expect((error as InvigilatorError).code).toBe('INV_ERR_INVENTORY_UNREADABLE');
    }
    expect(parseKey('{"exists":false}', 'registry:hklm')).toEqual({ exists: false, programs: [], skipped: 0 });
    // A pipeline of one object, and PowerShell 5.1's {value, Count} wrapping, both read as lists.
    const one = '{"exists":true,"entries":{"key":"k","DisplayName":"One"}}';
    expect(parseKey(one, 's').programs.map((p) => p.name)).toEqual(['One']);
    const wrapped = '{"exists":true,"entries":{"value":[{"key":"k","DisplayName":"Wrapped"}],"Count":1}}';
    expect(parseKey(wrapped, 's').programs.map((p) => p.name)).toEqual(['Wrapped']);
  });

  it('trusts no SID the users script prints: only people, each once, nothing that could carry script', () => {
    expect(parseUsers(inventoryRecording('win32-users-hostile.txt'))).toEqual([AMY]);
    expect(parseUsers(inventoryRecording('win32-users.txt'))).toEqual([AMY]);
    expect(parseUsers('')).toEqual([]);
    expect(() => parseUsers('not json')).toThrow(InvigilatorError);
  });
});

describe('the Windows reader', () => {
  it('reads both machine keys and each loaded user hive, one script each, through the session', async () => {
    const session = windows({
      keys: {
        [HKLM]: inventoryRecording('win32-hklm.txt'),
        [WOW]: inventoryRecording('win32-hklm-wow6432node.txt'),
        [userKey(AMY).path]: inventoryRecording('win32-hku-user.txt'),
      },
    });
    const snapshot = await new RegistryInventory(session).list();
    expect(session.scripts.map(inventoryScriptKind)).toEqual(['users', 'read', 'read', 'read']);
    expect(snapshot.sources).toEqual(['registry:hklm', 'registry:hklm-wow6432node', `registry:hku:${AMY}`]);
    expect(snapshot.unread).toEqual([]);
    // The MSI under HKLM and the bundle under WOW6432Node share a name: two versions, two programs.
    expect(snapshot.programs.filter((p) => p.name === 'Microsoft .NET Runtime - 8.0.30 (arm64)').map((p) => [p.source, p.version])).toEqual([
      ['registry:hklm', '64.120.56788'],
      ['registry:hklm-wow6432node', '8.0.30.36317'],
    ]);
    expect(snapshot.programs.filter((p) => p.source === `registry:hku:${AMY}`).map((p) => p.name)).toEqual(['Zoom Workplace', 'Roblox Player for amy']);
  });

  it("leaves a user's key unread when it is hostile or too big, and still reads the machine's", async () => {
    const session = windows({
      keys: {
        [HKLM]: inventoryRecording('win32-hklm.txt'),
        [userKey(AMY).path]: inventoryRecording('win32-hku-too-many.txt'),
      },
    });
    const snapshot = await new RegistryInventory(session).list();
    // WOW6432Node is absent (32-bit Windows): read, and empty.
    expect(snapshot.sources).toEqual(['registry:hklm', 'registry:hklm-wow6432node']);
    expect(snapshot.unread).toEqual([expect.objectContaining({ source: `registry:hku:${AMY}`, code: 'INV_ERR_INVENTORY_UNREADABLE' })]);

    // A session that refuses a flood (more than its output cap) costs only that key.
    const capped = new RecordedPowerShell((script) => {
      if (inventoryScriptKind(script) === 'users') return inventoryRecording('win32-users.txt');
      return inventoryScriptPath(script) === userKey(AMY).path ? 'x'.repeat(2000) : inventoryRecording('win32-key-absent.txt');
    }, 1000);
    const flooded = await new RegistryInventory(capped).list();
    expect(flooded.sources).toEqual(['registry:hklm', 'registry:hklm-wow6432node']);
    expect(flooded.unread.map((u) => u.source)).toEqual([`registry:hku:${AMY}`]);
  });

  it('reads the machine keys when the users script fails, and fails with a code only when nothing could be read', async () => {
    const noUsers = await new RegistryInventory(
      windows({ users: { error: 'Access is denied' }, keys: { [HKLM]: inventoryRecording('win32-hklm.txt') } }),
    ).list();
    expect(noUsers.sources).toEqual(['registry:hklm', 'registry:hklm-wow6432node']);
    expect(noUsers.unread.map((u) => u.source)).toEqual(['registry:hku']);

    const broken = new RecordedPowerShell(() => ({ error: 'PowerShell exited (1)' }));
    const error = await new RegistryInventory(broken).list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvigilatorError);
    expect((error as InvigilatorError).code).toBe('INV_ERR_INVENTORY_UNREADABLE');
  });
});

/**
 * The contract on the recorded uninstall keys (test/fixtures/software/
 * inventory-recordings, README.md there): both machine keys and Amy's hive,
 * which holds the deliberately hostile entries; then Amy's hive with more
 * subkeys than a source may hold; then a session that fails every script.
 */
inventorySourceContract('Windows (recorded uninstall keys)', async (scenario) => {
  if (scenario === 'nothing-readable') return { source: new RegistryInventory(new RecordedPowerShell(() => ({ error: 'PowerShell exited (1)' }))) };
  const session = windows({
    keys: {
      [HKLM]: inventoryRecording('win32-hklm.txt'),
      [WOW]: inventoryRecording('win32-hklm-wow6432node.txt'),
      [userKey(AMY).path]: inventoryRecording(scenario === 'ordinary' ? 'win32-hku-hostile.txt' : 'win32-hku-too-many.txt'),
    },
  });
  return { source: new RegistryInventory(session), ...(scenario === 'one-unreadable' ? { unreadable: `registry:hku:${AMY}` } : {}) };
});
