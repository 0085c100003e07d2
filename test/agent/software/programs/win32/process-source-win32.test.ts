import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventDraft } from '../../../../../agent/core/events';
import { taskkillKiller } from '../../../../../agent/software/programs/win32/taskkill';
import { WIN32_PROGRAMS } from '../../../../../agent/software/programs/win32/programs-os';
import { publisherOf, signerScript, win32SignerOf } from '../../../../../agent/software/programs/win32/process-signer-win32';
import type { ObservedProcess, ProcessChange } from '../../../../../agent/software/programs/process-source';
import {
  PROCESS_WATCH_SCRIPT,
  StartTraceProcessSource,
  creationTimeScript,
  parseWatchLine,
  processWatchArgs,
} from '../../../../../agent/software/programs/win32/process-source-win32';
import { SoftwareGuard } from '../../../../../agent/software/programs/software-guard';
import { RecordedCommands } from '../../../../../agent/os/recorded-commands';
import { RecordedPowerShell } from '../../../../../agent/os/win32/recorded-powershell';
import { preset } from '../../../../../shared/policy/presets';
import type { TrayNotice } from '../../../../../shared/protocol';
import { eventually, tempDir } from '../../../../support/cli';
import { type ProcessRig, processSourceContract } from '../process-source-contract';
import { silentLogger } from '../../../../support/harness';

const FIXTURES = join(__dirname, '../../../../fixtures/software/process-recordings');

/** A recording: `#` header lines that must say where it came from, `#---`, then the output. */
function recording(name: string): string {
  const text = readFileSync(join(FIXTURES, name), 'utf8');
  const end = text.indexOf('\n#---\n');
  if (end < 0) throw new Error(`${name}: no "#---" line ends the header`);
  const header = text.slice(0, end).split('\n');
  if (!header.some((l) => /^# Source: \S/.test(l)) || !header.some((l) => /^# Constructed: (yes|no)\b/.test(l)))
    throw new Error(`${name}: no Source or Constructed line`);
  return text.slice(end + '\n#---\n'.length);
}

const WATCH = recording('win32-process-watch.txt');

/** A stand-in for powershell.exe: node printing the recording as the watch script would, then (unless `exit`) staying alive. */
function fakeWatch(output: string, options: { exit?: boolean; countFile?: string } = {}): { command: string; args: string[] } {
  const script = [
    options.countFile ? `require('fs').appendFileSync(${JSON.stringify(options.countFile)}, 'x\\n');` : '',
    `process.stdout.write(${JSON.stringify(output.replace(/\n/g, '\r\n'))});`,
    options.exit ? 'process.exit(0);' : 'setInterval(() => {}, 1000);',
  ].join('');
  return { command: process.execPath, args: ['-e', script] };
}

const created: Record<number, string> = {
  4: '2026-11-23T07:58:02.1250000Z',
  5120: '2026-11-23T08:01:15.4400000Z',
  6204: '2026-11-23T08:01:20.0000000Z',
  7344: '2026-11-23T09:15:02.1230000Z',
  8120: '2026-11-23T09:16:10.0100000Z',
};
/** The query session: answers the creation-time script for the pids still "running", and the signer script for OneDrive. */
function queries(): RecordedPowerShell {
  return new RecordedPowerShell((script) => {
    const pid = /ProcessId = (\d+)/.exec(script)?.[1];
    if (script.startsWith('# invigilator:process-created') && pid) return created[Number(pid)] ?? '';
    if (script.startsWith('# invigilator:signer'))
      return script.includes('OneDrive.exe') ? 'CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US' : '';
    return undefined;
  });
}

describe('the Windows process source (Win32_ProcessStartTrace through PowerShell), on recorded output', () => {
  const sources: StartTraceProcessSource[] = [];
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop();
  });

  it('runs one script, encoded for -EncodedCommand, that subscribes to the start trace', () => {
    const args = processWatchArgs();
    expect(args.slice(0, -1)).toEqual(['-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-EncodedCommand']);
    expect(Buffer.from(args.at(-1)!, 'base64').toString('utf16le')).toBe(PROCESS_WATCH_SCRIPT);
    expect(PROCESS_WATCH_SCRIPT).toContain('Register-CimIndicationEvent -ClassName Win32_ProcessStartTrace');
    expect(creationTimeScript(7344)).toContain("'ProcessId = 7344'");
    expect(() => creationTimeScript(-1)).toThrow();
  });

  it('parses each recorded line, and calls anything else invalid', () => {
    const lines = WATCH.split('\n').filter((l) => l.trim() !== '');
    const kinds = lines.map((l) => parseWatchLine(l).kind);
    expect(kinds).toEqual([
      'present',
      'present',
      'present',
      'present',
      'present',
      'present',
      'ready',
      'tick',
      'started',
      'started',
      'invalid',
      'started',
      'tick',
    ]);
    const wireshark = parseWatchLine(lines[8]!);
    expect(wireshark).toEqual({
      kind: 'started',
      process: {
        pid: 7344,
        ppid: 5120,
        name: 'Wireshark.exe',
        path: 'C:\\Program Files\\Wireshark\\Wireshark.exe',
        uid: 1,
        startKey: '2026-11-23T09:15:02.1230000Z',
        startedAtMs: Date.parse('2026-11-23T09:15:02.123Z'),
      },
    });
    // Gone before its path could be read: known by the trace's FILETIME only.
    expect(parseWatchLine(lines[9]!)).toMatchObject({
      process: { pid: 7400, name: 'dumpcap.exe', startKey: 'ft:134398989045000000', startedAtMs: Date.parse('2026-11-23T09:15:04.500Z') },
    });
    expect(parseWatchLine(lines[9]!)).not.toHaveProperty('process.path');
    // The Idle process has no creation time: it can never be confirmed, so never killed.
    expect(parseWatchLine(lines[0]!)).toMatchObject({ process: { pid: 0, startKey: 'unknown' } });
    for (const hostile of [
      '{"k":"start","pid":-1,"name":"x","created":"2026-01-01T00:00:00Z"}',
      '{"k":"start","pid":1.5,"name":"x"}',
      '{"k":"start","pid":12,"name":{"a":1}}',
      '{"k":"start","pid":12,"name":""}',
      `{"k":"start","pid":12,"name":"${'a'.repeat(20_000)}"}`,
      '{"k":"launch","pid":12,"name":"x"}',
      '[1,2,3]',
      'null',
      '',
    ]) {
      expect(parseWatchLine(hostile)).toEqual({ kind: 'invalid' });
    }
  });

  it('reports the running processes, waits for ready, then reports each start; a garbage line is counted, not fatal', async () => {
    const fake = fakeWatch(WATCH);
    const source = new StartTraceProcessSource({ command: fake.command, args: fake.args, queries: queries(), logger: silentLogger() });
    sources.push(source);
    const seen: Array<[number, ProcessChange]> = [];
    await source.start((p, change) => seen.push([p.pid, change]));
    await eventually(() => (seen.length === 9 ? true : undefined));
    expect(seen).toEqual([
      [0, 'present'],
      [4, 'present'],
      [612, 'present'],
      [880, 'present'],
      [5120, 'present'],
      [6204, 'present'],
      [7344, 'started'],
      [7400, 'started'],
      [8120, 'started'],
    ]);
    expect(source.invalidLines).toBe(1);
    expect(source.running().map((p) => p.pid)).toContain(8120);
  });

  it('starts the session again when it dies, without reporting what was already known as new', async () => {
    const countFile = join(tempDir('watch-restarts'), 'starts');
    writeFileSync(countFile, '');
    const presentOnly =
      WATCH.split('\n')
        .filter((l) => l.includes('"present"') || l.includes('"ready"'))
        .join('\n') + '\n';
    const fake = fakeWatch(presentOnly, { exit: true, countFile });
    const source = new StartTraceProcessSource({ command: fake.command, args: fake.args, queries: queries(), logger: silentLogger(), maxBackoffMs: 20 });
    sources.push(source);
    const seen: number[] = [];
    await source.start((p) => seen.push(p.pid));
    await eventually(() => (readFileSync(countFile, 'utf8').length >= 6 ? true : undefined));
    expect(seen).toEqual([0, 4, 612, 880, 5120, 6204]);
  });

  it('a process is the same only while Win32_Process gives the creation time it started with', async () => {
    const source = new StartTraceProcessSource({ queries: queries() });
    const p = (pid: number, startKey: string): ObservedProcess => ({ pid, ppid: 0, name: 'x.exe', startKey });
    expect(await source.isSame(p(7344, '2026-11-23T09:15:02.1230000Z'))).toBe(true);
    expect(await source.isSame(p(7344, '2026-11-23T06:00:00.0000000Z'))).toBe(false);
    expect(await source.isSame(p(7400, 'ft:134398989045000000'))).toBe(false);
    expect(await source.isSame(p(8120, 'ft:134398989700100000'))).toBe(true);
    expect(await source.isSame(p(0, 'unknown'))).toBe(false);
  });

  it('kills with taskkill /F /PID, and tells killed from gone from failed by its exit code', async () => {
    const runner = new RecordedCommands()
      .record('taskkill', ['/F', '/PID', '7344'], { stdout: 'SUCCESS: The process with PID 7344 has been terminated.\r\n', code: 0 })
      .record('taskkill', ['/F', '/PID', '7400'], { stdout: '', code: 128 })
      .record('taskkill', ['/F', '/PID', '880'], { stdout: '', code: 1 });
    const killer = taskkillKiller(runner);
    const p = (pid: number): ObservedProcess => ({ pid, ppid: 0, name: 'x.exe', startKey: 'k' });
    expect(await killer.kill(p(7344))).toBe('killed');
    expect(await killer.kill(p(7400))).toBe('gone');
    expect(await killer.kill(p(880))).toBe('failed');
    expect(await killer.kill(p(1))).toBe('failed');
    expect(runner.calls[0]).toEqual({ file: 'taskkill', args: ['/F', '/PID', '7344'] });
  });

  it('reads the Authenticode publisher (O=, else CN=) of a validly signed file only', async () => {
    expect(publisherOf('CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US')).toBe('Microsoft Corporation');
    expect(publisherOf('CN="Example, Inc.", O="Example, Inc.", C=GB')).toBe('Example, Inc.');
    expect(publisherOf('CN=Only A Name')).toBe('Only A Name');
    expect(publisherOf('garbage')).toBeUndefined();
    expect(signerScript("C:\\Users\\o'brien\\x.exe")).toContain("-LiteralPath 'C:\\Users\\o''brien\\x.exe'");
    let identity = 'v1';
    const session = queries();
    const signerOf = win32SignerOf(session, async () => identity);
    const onedrive = 'C:\\Users\\amy\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe';
    expect(await signerOf(onedrive)).toBe('Microsoft Corporation');
    expect(await signerOf(onedrive)).toBe('Microsoft Corporation');
    expect(session.scripts.filter((s) => s.startsWith('# invigilator:signer'))).toHaveLength(1);
    // The file at that path changed: asked again.
    identity = 'v2';
    await signerOf(onedrive);
    expect(session.scripts.filter((s) => s.startsWith('# invigilator:signer'))).toHaveLength(2);
    expect(await signerOf('C:\\Users\\amy\\Downloads\\svchost.exe')).toBeUndefined();
  });

  describe('the guard on these recordings', () => {
    async function guardOn(policyName: 'basildon-primary' | 'carrington-infant') {
      const fake = fakeWatch(WATCH);
      const session = queries();
      const source = new StartTraceProcessSource({ command: fake.command, args: fake.args, queries: session, logger: silentLogger() });
      sources.push(source);
      const runner = new RecordedCommands().respond((file, args) => (file === 'taskkill' ? { stdout: `SUCCESS: ${args[2]}\r\n`, code: 0 } : undefined));
      const events: EventDraft[] = [];
      const notices: Array<{ uid: number; notice: TrayNotice }> = [];
      const guard = new SoftwareGuard({
        policy: () => preset(policyName)!,
        source,
        record: async (e) => {
          events.push(e);
        },
        notices: { showTo: (uid, notice) => notices.push({ uid, notice }), withdraw: () => undefined },
        roleOf: async () => 'pupil',
        logger: silentLogger(),
        selfPids: () => [9999],
        os: WIN32_PROGRAMS,
        killer: taskkillKiller(runner),
        signerOf: win32SignerOf(session, async () => 'same'),
      });
      await guard.start();
      await eventually(() => (source.running().length >= 9 ? true : undefined));
      await guard.settled();
      await guard.stop();
      const detected = events
        .filter((e) => e.type === 'software.detected')
        .map((e) => [(e.data as { process: { pid: number } }).process.pid, (e.data as { ruleId: string }).ruleId]);
      const killed = runner.calls.map((c) => Number(c.args[2]));
      return { events, detected, killed, notices };
    }

    it('basildon-primary: stops Wireshark through taskkill for the user of session 1; dumpcap, already gone, is reported only', async () => {
      const m = await guardOn('basildon-primary');
      // Decisions run side by side: the order of their events is not part of the contract.
      expect([...m.detected].sort()).toEqual([
        [7344, 'cat-hacking-tool'],
        [7400, 'cat-hacking-tool'],
      ]);
      expect(m.killed).toEqual([7344]);
      expect(m.events.filter((e) => e.type === 'software.terminated').map((e) => (e.data as { process: { pid: number } }).process.pid)).toEqual([7344]);
      expect(m.notices.map((n) => n.uid)).toEqual([1]);
    });

    it('carrington-infant (allowlist): stops a svchost.exe in Downloads, leaves OneDrive signed by Microsoft and everything in Windows alone', async () => {
      const m = await guardOn('carrington-infant');
      expect(m.detected).toEqual(expect.arrayContaining([[8120, 'unapproved']]));
      expect(m.detected.map(([pid]) => pid)).not.toEqual(expect.arrayContaining([6204]));
      expect(m.detected.map(([pid]) => pid).filter((pid) => [0, 4, 612, 880, 5120].includes(pid as number))).toEqual([]);
      expect(m.killed).toEqual(expect.arrayContaining([7344, 8120]));
    });
  });
});

/**
 * The contract on the recorded watch output (win32-process-watch.txt): the
 * stand-in prints the running processes and `ready`, and the rest (the
 * starts, Wireshark first, pid 7344) only once the rig launches a program.
 * The check before a kill answers each creation time from the recording
 * until the rig ends that process. Broken: powershell.exe is not there.
 */
processSourceContract('Windows (recorded Win32_ProcessStartTrace)', async (broken) => {
  const lines = WATCH.split('\n');
  const readyAt = lines.findIndex((l) => l.includes('"ready"'));
  const before = lines.slice(0, readyAt + 1).join('\n') + '\n';
  const after = lines.slice(readyAt + 1).join('\n');
  const trigger = join(tempDir('watch-trigger'), 'launched');
  const script = [
    `process.stdout.write(${JSON.stringify(before.replace(/\n/g, '\r\n'))});`,
    `const t = setInterval(() => { if (require('fs').existsSync(${JSON.stringify(trigger)})) { clearInterval(t); process.stdout.write(${JSON.stringify(after.replace(/\n/g, '\r\n'))}); } }, 10);`,
    'setInterval(() => {}, 1000);',
  ].join('');
  const running = new Map(Object.entries(created).map(([pid, time]) => [Number(pid), time]));
  const session = new RecordedPowerShell((s) => {
    if (broken) return undefined;
    const pid = /ProcessId = (\d+)/.exec(s)?.[1];
    return s.startsWith('# invigilator:process-created') && pid ? (running.get(Number(pid)) ?? '') : undefined;
  });
  const source = new StartTraceProcessSource({
    command: broken ? join(tempDir('no-powershell'), 'powershell.exe') : process.execPath,
    args: broken ? [] : ['-e', script],
    queries: session,
    logger: silentLogger(),
    readyTimeoutMs: broken ? 200 : 10_000,
    maxBackoffMs: 50,
  });
  const rig: ProcessRig = {
    platform: 'win32',
    source,
    present: { pid: 5120, name: 'explorer.exe' },
    async launch() {
      writeFileSync(trigger, '');
      return { pid: 7344, name: 'Wireshark.exe' };
    },
    look: () => new Promise((r) => setTimeout(r, 20)),
    async end(pid) {
      running.delete(pid);
    },
    close: () => session.close(),
  };
  return rig;
});
