import type { ObservedProcess, ProcessChange, ProcessSource } from '../../../../agent/software/programs/process-source';
import type { Platform } from '../../../../shared/protocol/primitives';
import { eventually } from '../../../support/cli';

/**
 * What every ProcessSource does that the composition root and the software
 * guard rely on, whatever the OS: processes already running come first, as
 * `present`, before `start` resolves; a new one is reported once as
 * `started` and is then among `running()`; `isSame` is what makes a kill
 * safe (true for the very process, false for another start time or a process
 * that has ended, and never an error); `stop` ends every report; and a
 * source that cannot read the OS at all still starts, reports nothing and
 * stops, so the agent's other rules are not held up by it.
 *
 * Each OS rig backs these with what that OS shows: the real /proc on Linux
 * (a real child process), and on Windows and macOS the recordings in
 * test/fixtures/software/process-recordings (README.md there says where
 * they came from).
 */
export interface ProcessRig {
  platform: Platform;
  source: ProcessSource;
  /** A process the OS shows before watching starts. */
  present: { pid: number; name: string };
  /** Makes the OS show a new program; resolves with its pid and name as the OS gives them. */
  launch(): Promise<{ pid: number; name: string }>;
  /** Lets the source see the OS as it now is (a poll, or the watch's next lines). */
  look(): Promise<void>;
  /** Ends a process the rig launched: the OS no longer shows it. */
  end(pid: number): Promise<void>;
  close(): Promise<void>;
}

/** The longest path any of the three OSes gives an adapter (Linux's PATH_MAX, the Windows watch's cap; macOS's is 1024). */
const PATH_BOUND = 4096;

/** What every observation must be, whatever the OS gave: something the rule, the events and the kill can use as it is. */
function expectWellFormed(p: ObservedProcess): void {
  expect(Number.isSafeInteger(p.pid) && p.pid >= 0).toBe(true);
  expect(Number.isSafeInteger(p.ppid) && p.ppid >= 0).toBe(true);
  expect(typeof p.name).toBe('string');
  expect(p.name.length).toBeGreaterThan(0);
  expect(p.name.length).toBeLessThanOrEqual(PATH_BOUND);
  expect(typeof p.startKey).toBe('string');
  expect(p.startKey.length).toBeGreaterThan(0);
  if (p.path !== undefined) {
    expect(p.path.length).toBeLessThanOrEqual(PATH_BOUND);
    // A path is the executable's, so its base name is the process's name.
    expect(p.path.toLowerCase().endsWith(p.name.toLowerCase())).toBe(true);
  }
  if (p.uid !== undefined) expect(Number.isSafeInteger(p.uid) && p.uid >= 0).toBe(true);
  if (p.startedAtMs !== undefined) expect(Number.isFinite(p.startedAtMs)).toBe(true);
}

/** Every OS's process source passes this suite. `makeRig(false)`: the OS as usual; `makeRig(true)`: the OS's source cannot be read at all. */
export function processSourceContract(name: string, makeRig: (broken: boolean) => Promise<ProcessRig>): void {
  describe(`the ${name} process source (contract)`, () => {
    let rig: ProcessRig;
    let seen: Array<{ p: ObservedProcess; change: ProcessChange }>;
    const listener = (p: ObservedProcess, change: ProcessChange) => seen.push({ p, change });
    const reported = (pid: number, change: ProcessChange) => seen.filter((s) => s.p.pid === pid && s.change === change);

    beforeEach(() => {
      seen = [];
    });
    afterEach(async () => {
      await rig.source.stop();
      await rig.close();
    });

    it("says which OS it watches, the composition root's choice", async () => {
      rig = await makeRig(false);
      expect(rig.source.platform).toBe(rig.platform);
    });

    it('reports what was running as present before start resolves, each observation well formed', async () => {
      rig = await makeRig(false);
      await rig.source.start(listener);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((s) => s.change === 'present')).toBe(true);
      expect(reported(rig.present.pid, 'present').map((s) => s.p.name)).toEqual([rig.present.name]);
      for (const s of seen) expectWellFormed(s.p);
      expect(new Set(seen.map((s) => s.p.pid)).size).toBe(seen.length);
      expect(rig.source.running().map((p) => p.pid)).toEqual(expect.arrayContaining([rig.present.pid]));
    });

    it('reports a new program once, as started, and keeps it among the running; nothing known is reported again', async () => {
      rig = await makeRig(false);
      await rig.source.start(listener);
      const launched = await rig.launch();
      await eventually(async () => {
        await rig.look();
        return reported(launched.pid, 'started').length > 0 ? true : undefined;
      });
      await rig.look();
      await rig.look();
      const starts = reported(launched.pid, 'started');
      expect(starts).toHaveLength(1);
      expect(starts[0]!.p.name).toBe(launched.name);
      expectWellFormed(starts[0]!.p);
      expect(reported(launched.pid, 'present')).toEqual([]);
      // What was already known, and has not run another program, is not reported again.
      expect(seen.filter((s) => s.p.pid === rig.present.pid)).toHaveLength(1);
      expect(rig.source.running().find((p) => p.pid === launched.pid)?.startKey).toBe(starts[0]!.p.startKey);
    });

    it('starting twice watches once: nothing is reported twice', async () => {
      rig = await makeRig(false);
      await rig.source.start(listener);
      const first = seen.length;
      await rig.source.start(listener);
      await rig.look();
      expect(reported(rig.present.pid, 'present')).toHaveLength(1);
      expect(seen.filter((s) => s.change === 'present')).toHaveLength(first);
    });

    it('says a process is the same only with its own start key, and not once it has ended; never with an error', async () => {
      rig = await makeRig(false);
      await rig.source.start(listener);
      const launched = await rig.launch();
      const observed = await eventually(async () => {
        await rig.look();
        return reported(launched.pid, 'started')[0]?.p;
      });
      expect(await rig.source.isSame(observed)).toBe(true);
      expect(await rig.source.isSame({ ...observed, startKey: `${observed.startKey}0` })).toBe(false);
      await rig.end(launched.pid);
      expect(await rig.source.isSame(observed)).toBe(false);
    });

    it('reports nothing after stop, even as programs start, and stops twice without harm', async () => {
      rig = await makeRig(false);
      await rig.source.start(listener);
      await rig.source.stop();
      const before = seen.length;
      const launched = await rig.launch();
      await rig.look();
      await new Promise((r) => setTimeout(r, 100));
      expect(seen).toHaveLength(before);
      expect(reported(launched.pid, 'started')).toEqual([]);
      await rig.source.stop();
    });

    it('starts, reports nothing and stops when the OS cannot be read; a process is then never the same', async () => {
      rig = await makeRig(true);
      await rig.source.start(listener);
      await rig.look();
      expect(seen).toEqual([]);
      expect(rig.source.running()).toEqual([]);
      expect(await rig.source.isSame({ pid: rig.present.pid, ppid: 0, name: rig.present.name, startKey: '1' })).toBe(false);
    });
  });
}
