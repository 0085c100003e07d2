import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PS_ARGS, PsProcessSource, parsePsOutput } from '../../../../../agent/software/programs/darwin/process-source-darwin';
import type { ObservedProcess, ProcessChange } from '../../../../../agent/software/programs/process-source';
import { decideSoftware } from '../../../../../agent/software/programs/software-decision';
import { RecordedCommands } from '../../../../../agent/os/recorded-commands';
import { type ProcessRig, processSourceContract } from '../process-source-contract';
import { settingsFor } from '../../../../../shared/policy/resolve';
import { preset } from '../../../../../shared/policy/presets';

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

const POLL1 = recording('darwin-ps-poll1.txt');
const POLL2 = recording('darwin-ps-poll2.txt');

describe('the macOS process source (ps polling), on recorded output', () => {
  it('parses rows: numbers, the fixed lstart form, and an executable path with spaces as the rest of the line', () => {
    const rows = parsePsOutput(POLL1);
    expect(rows.map((r) => r.pid)).toEqual([0, 1, 107, 109, 111, 412, 610]);
    expect(rows[1]).toEqual({
      pid: 1,
      ppid: 0,
      name: 'launchd',
      path: '/sbin/launchd',
      uid: 0,
      startKey: 'Mon May 8 09:12:01 2023',
      startedAtMs: new Date(2023, 4, 8, 9, 12, 1).getTime(),
    });
    expect(rows[0]).toMatchObject({ pid: 0, name: 'kernel_task' });
    expect(rows[0]).not.toHaveProperty('path');
    expect(rows[6]).toMatchObject({ name: 'Google Chrome', path: '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome', uid: 501 });
  });

  it('skips the header, garbage and anything that is not a row, and keeps a hostile name as plain text', () => {
    const rows = parsePsOutput(POLL2);
    expect(rows.map((r) => r.pid)).toEqual([0, 1, 107, 109, 111, 412, 610, 733, 734]);
    expect(rows.at(-1)).toMatchObject({ path: '/Users/amy/a "quoted" (name) ; rm -rf x', name: 'a "quoted" (name) ; rm -rf x' });
    expect(parsePsOutput('')).toEqual([]);
    expect(parsePsOutput('  12 1 501 Someday 10:00 2023 /x\n 1 2 3\n')).toEqual([]);
  });

  it('reports what was running, then what is new, and a reused pid (another start time) as new', async () => {
    let answer = POLL1;
    const runner = new RecordedCommands().respond((file, args) =>
      file === 'ps' && args.join(' ') === PS_ARGS.join(' ') ? { stdout: answer, code: 0 } : undefined,
    );
    const source = new PsProcessSource({ runner, intervalMs: 3_600_000 });
    const seen: Array<[number, string, ProcessChange]> = [];
    await source.start((p, change) => seen.push([p.pid, p.name, change]));
    expect(seen.every(([, , change]) => change === 'present')).toBe(true);
    expect(seen).toHaveLength(7);
    answer = POLL2;
    await source.pollNow();
    expect(seen.slice(7)).toEqual([
      [610, 'Dropbox', 'started'],
      [733, 'firefox', 'started'],
      [734, 'a "quoted" (name) ; rm -rf x', 'started'],
    ]);
    await source.pollNow();
    expect(seen).toHaveLength(10);
    await source.stop();
    expect(runner.calls.every((c) => c.file === 'ps')).toBe(true);
  });

  it('checks a process is the same by its lstart before it is killed', async () => {
    const runner = new RecordedCommands()
      .record('ps', ['-o', 'lstart=', '-p', '610'], { stdout: 'Mon May  8 10:02:33 2023\n', code: 0 })
      .record('ps', ['-o', 'lstart=', '-p', '733'], { stdout: '', code: 1 });
    const source = new PsProcessSource({ runner });
    const p = (pid: number, startKey: string): ObservedProcess => ({ pid, ppid: 1, name: 'x', startKey });
    expect(await source.isSame(p(610, 'Mon May 8 10:02:33 2023'))).toBe(true);
    expect(await source.isSame(p(610, 'Mon May 8 09:15:02 2023'))).toBe(false);
    expect(await source.isSame(p(733, 'Mon May 8 10:02:35 2023'))).toBe(false);
  });

  it('what the rule makes of these processes on a Mac: Dropbox and Tor Browser stopped under Carrington, the OS spared', () => {
    const settings = settingsFor(preset('carrington-infant')!, 'software', 'pupil');
    const outcomes = parsePsOutput(POLL2).map((p) => [
      p.name,
      decideSoftware({ process: { ...p }, settings, platform: 'darwin', self: { pids: new Set([99999]) } }).ruleId,
    ]);
    expect(outcomes).toEqual([
      ['kernel_task', 'failsafe'],
      ['launchd', 'failsafe'],
      ['logd', 'failsafe'],
      ['UserEventAgent', 'failsafe'],
      ['uninstalld', 'none'],
      ['Finder', 'failsafe'],
      ['Dropbox', 'cat-personal-cloud-storage'],
      ['firefox', 'cat-filter-bypass'],
      ['a "quoted" (name) ; rm -rf x', 'unapproved'],
    ]);
  });
});

/**
 * The contract on the recorded `ps` output (darwin-ps-poll1.txt, then
 * darwin-ps-poll2.txt once a program is launched: firefox, pid 733). The
 * check before a kill (`ps -o lstart= -p PID`) answers from the recording in
 * force, and fails as ps does (status 1, no output) for a process that has
 * ended. Broken: ps cannot be started at all.
 */
processSourceContract('macOS (recorded ps)', async (broken) => {
  let answer = POLL1;
  const ended = new Set<number>();
  const runner = new RecordedCommands().respond((file, args) => {
    if (broken) return { missing: true };
    if (file !== 'ps') return undefined;
    if (args.join(' ') === PS_ARGS.join(' ')) return { stdout: answer, code: 0 };
    const asked = args.length === 4 && args[0] === '-o' && args[1] === 'lstart=' && args[2] === '-p' ? Number(args[3]) : undefined;
    if (asked === undefined) return undefined;
    const row = parsePsOutput(answer).find((p) => p.pid === asked);
    return row && !ended.has(asked) ? { stdout: `${row.startKey}\n`, code: 0 } : { stdout: '', code: 1 };
  });
  const source = new PsProcessSource({ runner, intervalMs: 3_600_000 });
  const rig: ProcessRig = {
    platform: 'darwin',
    source,
    present: { pid: 1, name: 'launchd' },
    async launch() {
      answer = POLL2;
      return { pid: 733, name: 'firefox' };
    },
    look: () => source.pollNow(),
    async end(pid) {
      ended.add(pid);
    },
    close: async () => undefined,
  };
  return rig;
});
