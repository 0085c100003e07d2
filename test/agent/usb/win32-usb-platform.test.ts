import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvigilatorError } from '../../../shared/errors';
import type { Logger } from '../../../node-common/logging';
import { assessStorage } from '../../../agent/usb/storage-assessment';
import type { ObservedUsbDevice, UsbChange } from '../../../agent/usb/usb-platform';
import { classesFrom, parseActionResult, parseDeviceList, parseStorage, parseUsbInstanceId, volumeEncryption } from '../../../agent/usb/win32/parsers';
import { ProcessPowerShellSession, frameScript, newMarker, readFramed, type PowerShellSession } from '../../../agent/os/win32/powershell-session';
import { asList, psQuote } from '../../../agent/os/win32/ps-text';
import { isUsbInstanceId } from '../../../agent/usb/win32/instance-id';
import { RecordedPowerShell, type RecordedAnswer } from '../../../agent/os/win32/recorded-powershell';
import { LIST_USB, allowScript, blockScript, readOnlyScript, scriptInstanceId, scriptName, storageScript } from '../../../agent/usb/win32/scripts';
import { createWin32UsbPlatform, type Win32UsbLogger, type Win32UsbPlatform } from '../../../agent/usb/win32/win32-usb-platform';
import { usbPlatformContract, type RigDevice, type RigEffect, type UsbPlatformRig } from './platform-contract';

/** The composition root passes the agent's winston logger; this fails to compile if it stops fitting. */
export const winstonFits = (logger: Logger): Win32UsbLogger => logger;

const FIXTURES = join(__dirname, '..', '..', 'fixtures', 'usb', 'win32');
const fixture = (path: string): string => readFileSync(join(FIXTURES, path), 'utf8');

const RIG_DEVICES: readonly RigDevice[] = ['present-at-start', 'plain-stick', 'encrypted-stick', 'keyboard', 'hostile-strings'];

/** The recorded PnP rows of one rig device, in whichever shape ConvertTo-Json printed them. */
function pnpRows(name: RigDevice | 'base'): Record<string, unknown>[] {
  return asList(JSON.parse(fixture(`pnp/${name}.json`))) as Record<string, unknown>[];
}

/**
 * Stands in for Windows behind a RecordedPowerShell. The device list is the
 * recorded rows of whatever is plugged in; an action's effect is read from
 * the script the adapter sent (which cmdlets it calls, for which instance id),
 * never from which platform method the test called.
 */
async function makeRig(): Promise<UsbPlatformRig & { session: RecordedPowerShell; platform: Win32UsbPlatform }> {
  const plugged = new Set<RigDevice>(['present-at-start']);
  const disabled = new Set<RigDevice>();
  const effects = new Map<RigDevice, RigEffect>();
  const keyOf = new Map<string, RigDevice>();
  for (const d of RIG_DEVICES) for (const row of pnpRows(d)) keyOf.set(String(row.PNPDeviceID).toUpperCase(), d);

  const listing = (): string => {
    const rows = [...pnpRows('base')];
    for (const d of RIG_DEVICES) {
      if (!plugged.has(d)) continue;
      for (const row of pnpRows(d)) rows.push(disabled.has(d) && !String(row.PNPDeviceID).includes('&MI_') ? { ...row, ConfigManagerErrorCode: 22 } : row);
    }
    // A pipeline of one object is printed unwrapped; keep that quirk in play.
    return JSON.stringify(rows.length === 1 ? rows[0] : rows);
  };

  const effectOf = (script: string): RigEffect | undefined => {
    const disables = /^Disable-PnpDevice -InstanceId \$id -Confirm:\$false$/m.test(script);
    const enables = /Enable-PnpDevice -InstanceId \$id -Confirm:\$false/.test(script);
    const denyWrite =
      /-Name Deny_Write -PropertyType DWord -Value 1\b/.test(script) && script.includes('RemovableStorageDevices\\{53f5630d-b6bf-11d0-94f2-00a0c91efb8b}');
    if (denyWrite && disables && enables) return 'readonly';
    if (disables && !enables) return 'blocked';
    if (enables && !disables && !denyWrite) return 'allowed';
    return undefined;
  };

  const recording = (script: string): RecordedAnswer | undefined => {
    const name = scriptName(script);
    if (name === 'list-usb') return listing();
    const id = scriptInstanceId(script);
    const device = id ? keyOf.get(id.toUpperCase()) : undefined;
    const here = device !== undefined && plugged.has(device);
    if (name === 'storage') {
      if (!here) return fixture('storage/gone.json');
      return device === 'keyboard' || device === 'hostile-strings' ? fixture('storage/no-disks.json') : fixture(`storage/${device}.json`);
    }
    if (name === 'block' || name === 'allow' || name === 'readonly') {
      if (!here) return '{"gone":true}';
      const effect = effectOf(script);
      if (!effect) return { error: 'the rig does not recognise what this script does' };
      effects.set(device, effect);
      if (effect === 'blocked') disabled.add(device);
      else disabled.delete(device);
      return name === 'allow' ? '{"done":true,"enabled":false}' : '{"done":true}';
    }
    return undefined;
  };

  const session = new RecordedPowerShell(recording);
  const platform = createWin32UsbPlatform({ session, pollMs: 60_000, storageWaitMs: 100 });
  return {
    platform,
    session,
    plug: async (device) => {
      plugged.add(device);
      await platform.pollNow();
    },
    unplug: async (device) => {
      plugged.delete(device);
      await platform.pollNow();
    },
    effect: (device) => effects.get(device) ?? 'none',
    close: () => session.close(),
  };
}

usbPlatformContract('win32', makeRig);

describe('the win32 adapter beyond the contract', () => {
  it('folds the interfaces of a composite keyboard into one device keyed by its device node', async () => {
    const rig = await makeRig();
    const changes: UsbChange[] = [];
    await rig.platform.start((c) => changes.push(c));
    await rig.plug('keyboard');
    const keyboards = changes.filter((c) => c.device.vendorId === '046d');
    expect(keyboards).toHaveLength(1);
    expect(keyboards[0]!.device).toMatchObject({ key: 'USB\\VID_046D&PID_C31C\\5&1A2B3C4D&0&3', deviceClass: 0, interfaceClasses: [3] });
    expect(keyboards[0]!.device.serial).toBeUndefined();
    await rig.platform.stop();
    await rig.close();
  });

  it('keeps a blocked (disabled) device in the list, and enables it again on allow', async () => {
    const rig = await makeRig();
    const changes: UsbChange[] = [];
    await rig.platform.start((c) => changes.push(c));
    await rig.plug('plain-stick');
    const stick = changes.find((c) => c.device.vendorId === '0781')!.device;
    await rig.platform.block(stick);
    await rig.platform.pollNow();
    expect(changes.filter((c) => c.kind === 'removed')).toHaveLength(0);
    await rig.platform.allow(stick);
    expect(rig.effect('plain-stick')).toBe('allowed');
    await rig.platform.stop();
    await rig.close();
  });

  it('dismounts volumes before disabling, and without taking them offline for good', () => {
    const script = blockScript('USB\\VID_0781&PID_5567\\4C530001230101110453');
    expect(script.indexOf('Dismount')).toBeLessThan(script.indexOf('Disable-PnpDevice'));
    expect(script).toContain('Permanent = $false');
    expect(script).not.toMatch(/mountvol/i);
  });

  it('refuses to act on a key Windows did not report, without running anything', async () => {
    const rig = await makeRig();
    await rig.platform.start(() => undefined);
    const before = rig.session.scripts.length;
    const forged: ObservedUsbDevice = {
      key: "USB\\VID_0781&PID_5567\\X'; Remove-Item C:\\ -Recurse; '",
      vendorId: '0781',
      productId: '5567',
      deviceClass: 0,
      interfaceClasses: [8],
    };
    for (const act of [() => rig.platform.block(forged), () => rig.platform.readOnly(forged), () => rig.platform.storage(forged)]) {
      await expect(act()).rejects.toMatchObject({ code: 'INV_ERR_USB_DEVICE_GONE' });
    }
    expect(rig.session.scripts.length).toBe(before);
    await rig.platform.stop();
    await rig.close();
  });

  it('keeps watching when one poll prints garbage', async () => {
    let garbage = false;
    const rows = JSON.stringify(pnpRows('plain-stick')[0]);
    const session = new RecordedPowerShell((s) => (scriptName(s) === 'list-usb' ? (garbage ? '<html>oops' : rows) : undefined));
    const warnings: string[] = [];
    const platform = createWin32UsbPlatform({
      session,
      pollMs: 60_000,
      logger: { warn: (m: string) => warnings.push(m) },
    });
    const changes: UsbChange[] = [];
    expect(await platform.start((c) => changes.push(c))).toHaveLength(1);
    garbage = true;
    await platform.pollNow();
    expect(changes).toHaveLength(0);
    expect(warnings).toHaveLength(1);
    await platform.stop();
  });

  it('polls on its own at the configured interval', async () => {
    let rows = '';
    const session = new RecordedPowerShell((s) => (scriptName(s) === 'list-usb' ? rows : undefined));
    const platform = createWin32UsbPlatform({ session, pollMs: 10 });
    const changes: UsbChange[] = [];
    expect(await platform.start((c) => changes.push(c))).toEqual([]);
    rows = fixture('pnp/plain-stick.json');
    for (let i = 0; i < 1000 && changes.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(changes[0]).toMatchObject({ kind: 'arrived', device: { vendorId: '0781', serial: '4C530001230101110453' } });
    await platform.stop();
  });

  describe('with a fake clock', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    it('waits a bounded time for a disk, asking again every 250 ms, then reports none', async () => {
      const session = new RecordedPowerShell((s) => (scriptName(s) === 'list-usb' ? fixture('pnp/plain-stick.json') : fixture('storage/no-disks.json')));
      const platform = createWin32UsbPlatform({ session, storageWaitMs: 600 });
      const [stick] = await platform.start(() => undefined);
      const asked = () => session.scripts.filter((s) => scriptName(s) === 'storage').length;
      const started = Date.now();
      let answer: unknown;
      const storage = platform.storage(stick!).then((disks) => (answer = disks));
      await jest.advanceTimersByTimeAsync(0);
      expect(asked()).toBe(1);
      await jest.advanceTimersByTimeAsync(599);
      // Asked at 0, 250 and 500 ms; still waiting, since the bound is not yet reached.
      expect(asked()).toBe(3);
      expect(answer).toBeUndefined();
      await jest.advanceTimersByTimeAsync(151);
      await storage;
      // The ask at 750 ms is past the bound, so its empty answer is the answer.
      expect(answer).toEqual([]);
      expect(asked()).toBe(4);
      expect(Date.now() - started).toBe(750);
      await platform.stop();
    });
  });
});

describe('instance ids inside PowerShell', () => {
  it('quotes with doubled single quotes, typographic ones included', () => {
    expect(psQuote("a'b")).toBe("'a''b'");
    expect(psQuote('x\u2019; calc; \u2018')).toBe("'x\u2019\u2019; calc; \u2018\u2018'");
    expect(psQuote('$(calc) `n')).toBe("'$(calc) `n'");
  });

  it('accepts only what a USB instance id can be', () => {
    expect(isUsbInstanceId('USB\\VID_0781&PID_5567\\4C530001230101110453')).toBe(true);
    expect(isUsbInstanceId('USB\\VID_046D&PID_C31C&MI_00\\6&2C8F1F2E&0&0000')).toBe(true);
    for (const bad of ['', 'PCI\\VEN_8086', 'USB\\a\nb', 'USB\\a b', 'USB\\a,b', `USB\\${'x'.repeat(300)}`, 'USB\\caf\u00e9', 'USB\\x\u2019y']) {
      expect(isUsbInstanceId(bad)).toBe(false);
    }
  });

  it('puts a hostile id that passes validation into every script only as one inert literal', () => {
    // Printable ASCII with a quote: legal by the validation, so quoting has to hold.
    const hostile = "USB\\VID_0781&PID_5567\\A';Remove-Item$env:SystemRoot;'";
    expect(isUsbInstanceId(hostile)).toBe(true);
    for (const build of [storageScript, blockScript, allowScript, readOnlyScript]) {
      const script = build(hostile);
      expect(scriptInstanceId(script)).toBe(hostile);
      const line = script.split('\n').find((l) => l.startsWith('$id = '))!;
      expect(line).toBe("$id = 'USB\\VID_0781&PID_5567\\A'';Remove-Item$env:SystemRoot;'''");
      // Outside the literal the line holds nothing but the assignment.
      expect(line.slice(6)).toMatch(/^'(?:[^']|'')*'$/);
      expect(script.split('\n').filter((l) => l.includes('Remove-Item'))).toEqual([line]);
    }
  });

  it('refuses an id that is not one before building a script', () => {
    expect(() => blockScript('USB\\x\n Format-Volume')).toThrow(InvigilatorError);
    expect(() => allowScript('C:\\Windows')).toThrow(expect.objectContaining({ code: 'INV_ERR_USB_DEVICE_GONE' }));
  });
});

describe('win32 parsers', () => {
  it('takes vendor, product and serial from an instance id', () => {
    expect(parseUsbInstanceId('USB\\VID_0781&PID_5567\\4C530001230101110453')).toEqual({ vendorId: '0781', productId: '5567', serial: '4C530001230101110453' });
    expect(parseUsbInstanceId('USB\\VID_046D&PID_C31C\\5&1A2B3C4D&0&3')).toEqual({ vendorId: '046d', productId: 'c31c' });
    expect(parseUsbInstanceId('USB\\VID_046D&PID_C31C&MI_01\\6&2C8F1F2E&0&0001')).toEqual({ vendorId: '046d', productId: 'c31c', interfaceNumber: 1 });
    expect(parseUsbInstanceId('USB\\ROOT_HUB30\\4&2A9B1C7E&0&0')).toBeUndefined();
  });

  it('reads device and interface classes from compatible ids', () => {
    expect(classesFrom(['USB\\Class_08&SubClass_06&Prot_50', 'USB\\Class_08&SubClass_06', 'USB\\Class_08'])).toEqual({ interfaceClasses: [8] });
    expect(classesFrom(['USB\\DevClass_00&SubClass_00&Prot_00', 'USB\\COMPOSITE'])).toEqual({ deviceClass: 0, interfaceClasses: [] });
    expect(classesFrom(['USB\\Class_E0&SubClass_01&Prot_01'])).toEqual({ interfaceClasses: [0xe0] });
  });

  it('handles every shape ConvertTo-Json gives a list', () => {
    const one = fixture('pnp/plain-stick.json');
    expect(parseDeviceList(one)).toHaveLength(1);
    expect(parseDeviceList(`[${one}]`)).toHaveLength(1);
    expect(parseDeviceList(`{"value":[${one}],"Count":1}`)).toHaveLength(1);
    expect(parseDeviceList('')).toEqual([]);
    expect(parseDeviceList(fixture('pnp/base.json')).map((d) => d.vendorId)).toEqual(['8087']);
  });

  it('answers garbage with a coded error, never a crash', () => {
    for (const text of [
      '<html>',
      '{"PNPDeviceID":42}',
      '[1,2,3]',
      '"just a string"',
      '{"present":"yes"}',
      `[${'{"PNPDeviceID":"USB\\\\x"},'.repeat(1100)}{}]`,
    ]) {
      expect(() => parseDeviceList(text)).toThrow(expect.objectContaining({ code: 'INV_ERR_USB_OS_OUTPUT_INVALID' }));
    }
    for (const text of ['', 'null', '{"present":true,"disks":[{"Index":-1,"volumes":[]}]}', '{"disks":[]}']) {
      expect(() => parseStorage(text)).toThrow(expect.objectContaining({ code: 'INV_ERR_USB_OS_OUTPUT_INVALID' }));
    }
    expect(() => parseActionResult('WARNING: something')).toThrow(expect.objectContaining({ code: 'INV_ERR_USB_OS_OUTPUT_INVALID' }));
  });

  it('sanitises hostile strings and drops ids that cannot be instance ids', () => {
    const [device] = parseDeviceList(fixture('pnp/hostile-strings.json'));
    expect(device!.product!.length).toBeLessThanOrEqual(126);
    expect(device!.product).toContain('<script>');
    // eslint-disable-next-line no-control-regex
    expect(device!.manufacturer).not.toMatch(/[\u0000-\u001f\u202e]/);
    expect(parseDeviceList('{"PNPDeviceID":"USB\\\\VID_0781&PID_5567\\\\a b"}')).toEqual([]);
  });

  it('maps BitLocker states to encrypted, plain and unknown', () => {
    expect(volumeEncryption({ ProtectionStatus: 1, ConversionStatus: 1, VolumeType: 2 }, 2)).toEqual({ encrypted: true, scheme: 'bitlocker-to-go' });
    expect(volumeEncryption({ ProtectionStatus: 1, ConversionStatus: 1, VolumeType: 1 }, 3)).toEqual({ encrypted: true, scheme: 'bitlocker' });
    expect(volumeEncryption({ ProtectionStatus: 2, ConversionStatus: null, VolumeType: 2 }, 2)).toEqual({ encrypted: true, scheme: 'bitlocker-to-go' });
    expect(volumeEncryption({ ProtectionStatus: 0, ConversionStatus: 0 }, 2)).toEqual({ encrypted: false, scheme: 'none' });
    // Suspended: fully encrypted, but the key lies in the clear on the volume.
    expect(volumeEncryption({ ProtectionStatus: 0, ConversionStatus: 1 }, 2)).toEqual({ encrypted: 'unknown', scheme: 'unknown' });
    expect(volumeEncryption({ ProtectionStatus: 1, ConversionStatus: 2 }, 2)).toEqual({ encrypted: 'unknown', scheme: 'unknown' });
    expect(volumeEncryption(null, 2)).toEqual({ encrypted: 'unknown', scheme: 'unknown' });
  });

  it('reads a locked BitLocker To Go stick as encrypted', async () => {
    const { present, disks } = parseStorage(fixture('storage/locked-to-go.json'));
    expect(present).toBe(true);
    expect(disks[0]).toMatchObject({
      device: '\\\\.\\PHYSICALDRIVE3',
      sizeBytes: 8086618112,
      volumes: [{ device: 'F:', encrypted: true, scheme: 'bitlocker-to-go' }],
    });
    expect(await assessStorage(disks)).toMatchObject({ encrypted: true, scheme: 'bitlocker-to-go', unreadable: false });
  });

  it('reads an action result from the last line only', () => {
    expect(parseActionResult('\r\n{"done":true}\r\n')).toBe('done');
    expect(parseActionResult('{"gone":true}')).toBe('gone');
    expect(parseActionResult('some cmdlet chatter\n{"done":true,"enabled":true}')).toBe('done');
  });

  it('asks Windows for USB devices only, as compressed JSON', () => {
    expect(scriptName(LIST_USB)).toBe('list-usb');
    expect(LIST_USB).toContain(`-Filter "PNPDeviceID LIKE 'USB\\\\%'"`);
    expect(LIST_USB).toContain('ConvertTo-Json -Depth 4 -Compress');
  });
});

describe('session framing', () => {
  it('sends one line whatever the script holds, with the script base64-encoded', () => {
    const marker = newMarker();
    const script = "line one\nline 'two'\r\n\u00e9\u2713";
    const line = frameScript(script, marker);
    expect(line).not.toMatch(/[\r\n]/);
    const payload = /FromBase64String\('([A-Za-z0-9+/=]*)'\)/.exec(line)![1]!;
    expect(Buffer.from(payload, 'base64').toString('utf8')).toBe(script);
    expect(line).toContain(`'${marker}'`);
    expect(newMarker()).not.toBe(marker);
  });

  it('finds the end of an answer only at a whole marker line', () => {
    const m = newMarker();
    expect(readFramed('partial output', m)).toEqual({ kind: 'pending' });
    expect(readFramed(`out\r\n\n${m}:o`, m)).toEqual({ kind: 'pending' });
    expect(readFramed(`out\r\n\n${m}:ok\n`, m)).toEqual({ kind: 'ok', output: 'out' });
    expect(readFramed(`\n${m}:err:"boom \\u001b[31m"\n`, m)).toEqual({ kind: 'err', message: 'boom  [31m' });
    expect(readFramed(`\n${m}:err:{not json\n`, m)).toEqual({ kind: 'err', message: 'unreadable error' });
    // A device string that mentions some other marker does not end the answer.
    expect(readFramed(`\n__INV_END_00__:ok\n`, m)).toEqual({ kind: 'pending' });
  });
});

/**
 * A stand-in for `powershell.exe -Command -`: a node process reading framed
 * lines from stdin, understanding a tiny language, and answering with the
 * marker lines PowerShell's wrapper would print. The real spawn, framing,
 * decoding and restart code runs against it.
 */
const STAND_IN = `
const rl = require('readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const b = /FromBase64String\\('([A-Za-z0-9+/=]*)'\\)/.exec(line);
  const m = /'(__INV_END_[0-9a-f]+__)'/.exec(line);
  if (!b || !m) return;
  const script = Buffer.from(b[1], 'base64').toString('utf8');
  const marker = m[1];
  const ok = (text) => process.stdout.write(text + '\\r\\n\\n' + marker + ':ok\\n');
  let w;
  if ((w = /^Write-Output '(.*)'$/s.exec(script))) ok(w[1]);
  else if ((w = /^throw '(.*)'$/s.exec(script))) process.stdout.write('\\n' + marker + ':err:' + JSON.stringify(w[1]) + '\\n');
  else if (script === '$PID') ok(String(process.pid));
  else if (script === 'exit') process.exit(3);
  else if (script === 'Start-Sleep 3600') {}
  else if (script === 'flood') { const chunk = 'x'.repeat(65536); for (let i = 0; i < 64; i++) process.stdout.write(chunk); }
  else if (script === 'trickle') {
    // Byte by byte, so that multi-byte characters and the marker arrive split.
    const bytes = Buffer.from('Gr\\u00fc\\u00dfe \\u2713\\r\\n\\n' + marker + ':ok\\n', 'utf8');
    let i = 0;
    const next = () => { if (i < bytes.length) { process.stdout.write(bytes.subarray(i, ++i)); setTimeout(next, 1); } };
    next();
  } else process.stdout.write('\\n' + marker + ':err:' + JSON.stringify('unknown script') + '\\n');
});
`;

/** The same mini-language for the recorded fake, so both sessions face one contract. */
function miniShell(script: string): RecordedAnswer | undefined {
  const w = /^Write-Output '(.*)'$/s.exec(script);
  if (w) return w[1]!;
  const t = /^throw '(.*)'$/s.exec(script);
  if (t) return { error: t[1]! };
  return undefined;
}

function sessionContract(name: string, make: () => PowerShellSession): void {
  describe(`the ${name} PowerShell session (contract)`, () => {
    let session: PowerShellSession;
    beforeEach(() => {
      session = make();
    });
    afterEach(async () => {
      await session.close();
    });

    it('answers with what the script printed', async () => {
      expect(await session.run("Write-Output 'hello world'")).toBe('hello world');
    });

    it('serialises concurrent calls, each getting its own answer', async () => {
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => session.run(`Write-Output 'answer ${i}'`)));
      expect(answers).toEqual(Array.from({ length: 12 }, (_, i) => `answer ${i}`));
    });

    it('turns a script error into a coded error and carries on', async () => {
      await expect(session.run("throw 'Disable-PnpDevice: access denied'")).rejects.toMatchObject({ code: 'INV_ERR_OS_COMMAND_FAILED' });
      expect(await session.run("Write-Output 'still here'")).toBe('still here');
    });

    it('refuses calls once closed', async () => {
      await session.close();
      await expect(session.run("Write-Output 'late'")).rejects.toMatchObject({ code: 'INV_ERR_OS_COMMAND_NOT_STARTED' });
    });
  });
}

sessionContract('recorded', () => new RecordedPowerShell(miniShell));
const standIn = (options: { timeoutMs?: number; maxOutputChars?: number } = {}) =>
  new ProcessPowerShellSession({ command: process.execPath, args: ['-e', STAND_IN], ...options });
sessionContract('process (stand-in)', () => standIn());

describe('the process session against a stand-in process', () => {
  let session: ProcessPowerShellSession;
  afterEach(async () => {
    await session.close();
  });

  it('keeps one process for many calls', async () => {
    session = standIn();
    const first = await session.run('$PID');
    for (let i = 0; i < 5; i++) expect(await session.run('$PID')).toBe(first);
    expect(String(session.pid)).toBe(first);
  });

  it('restarts the process on the next call after it died', async () => {
    session = standIn();
    const first = await session.run('$PID');
    await expect(session.run('exit')).rejects.toMatchObject({ code: 'INV_ERR_OS_COMMAND_FAILED' });
    const second = await session.run('$PID');
    expect(second).not.toBe(first);
  });

  it('times out a call that never answers, and the next call gets a fresh process', async () => {
    // The session's own bound stays the default, so the two start-ups of node (slow on a busy machine) are not
    // what is timed; only the call that hangs, sent once the first answer shows the process is up, gets 300 ms.
    session = standIn();
    const first = await session.run('$PID');
    await expect(session.run('Start-Sleep 3600', 300)).rejects.toMatchObject({
      code: 'INV_ERR_OS_COMMAND_TIMEOUT',
      message: expect.stringContaining('no answer within 300 ms'),
    });
    expect(session.pid).toBeUndefined();
    expect(await session.run('$PID')).not.toBe(first);
  });

  it('bounds the output it will collect', async () => {
    session = standIn({ maxOutputChars: 1024 * 1024 });
    await expect(session.run('flood')).rejects.toMatchObject({ code: 'INV_ERR_OS_COMMAND_OVERFLOW' });
    expect(await session.run("Write-Output 'recovered'")).toBe('recovered');
  });

  it('reassembles output and marker that arrive split mid-character', async () => {
    session = standIn();
    expect(await session.run('trickle')).toBe('Gr\u00fc\u00dfe \u2713');
  });

  it('reports a command that cannot start with a coded error', async () => {
    session = new ProcessPowerShellSession({ command: join(FIXTURES, 'no-such-powershell.exe') });
    await expect(session.run("Write-Output 'x'")).rejects.toMatchObject({ code: 'INV_ERR_OS_COMMAND_NOT_STARTED' });
  });
});
