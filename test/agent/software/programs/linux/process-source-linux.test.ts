import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ProcfsProcessSource } from '../../../../../agent/software/programs/linux/process-source-linux';
import type { ObservedProcess, ProcessChange } from '../../../../../agent/software/programs/process-source';
import { eventually, tempDir } from '../../../../support/cli';
import { type ProcessRig, processSourceContract } from '../process-source-contract';

/** A /proc laid out as the kernel lays it out, for what a real /proc cannot be made to do on demand. */
class FakeProc {
  readonly root = tempDir('fake-proc');
  constructor() {
    writeFileSync(join(this.root, 'stat'), 'cpu  1 2 3 4\nbtime 1795330000\nprocesses 100\n');
    mkdirSync(join(this.root, 'self'));
    writeFileSync(join(this.root, 'meminfo'), '');
  }
  /** A process: stat with the given comm, flags and start time, an exe link (unless none), and a status with its uid. */
  add(pid: number, o: { comm: string; ppid?: number; start: number; flags?: number; exe?: string | null; uid?: number; statMissing?: boolean }) {
    const dir = join(this.root, String(pid));
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const fields = ['S', String(o.ppid ?? 1), '1', '1', '0', '-1', String(o.flags ?? 4194304), ...Array(12).fill('0'), String(o.start), '1000', '10'];
    if (!o.statMissing) writeFileSync(join(dir, 'stat'), `${pid} (${o.comm}) ${fields.join(' ')}\n`);
    if (o.exe !== null) symlinkSync(o.exe ?? `/usr/bin/${o.comm}`, join(dir, 'exe'));
    writeFileSync(join(dir, 'status'), `Name:\t${o.comm}\nUmask:\t0022\nUid:\t${o.uid ?? 1000}\t${o.uid ?? 1000}\t${o.uid ?? 1000}\t${o.uid ?? 1000}\n`);
  }
  exec(pid: number, exe: string) {
    unlinkSync(join(this.root, String(pid), 'exe'));
    symlinkSync(exe, join(this.root, String(pid), 'exe'));
  }
  remove(pid: number) {
    rmSync(join(this.root, String(pid)), { recursive: true, force: true });
  }
}

function collect() {
  const seen: Array<{ p: ObservedProcess; change: ProcessChange }> = [];
  return { seen, listener: (p: ObservedProcess, change: ProcessChange) => seen.push({ p, change }) };
}

describe('the Linux process source (/proc)', () => {
  const sources: ProcfsProcessSource[] = [];
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop();
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  describe('on a /proc laid out by hand', () => {
    function source(fake: FakeProc) {
      // Polls only when the test says (an interval no test waits for).
      const s = new ProcfsProcessSource({ procRoot: fake.root, intervalMs: 3_600_000, execSweepPolls: 1 });
      sources.push(s);
      return s;
    }

    it('reports what was running as present, then only new pids as started, each read in full once', async () => {
      const fake = new FakeProc();
      fake.add(1, { comm: 'systemd', ppid: 0, start: 1, exe: '/usr/lib/systemd/systemd', uid: 0 });
      fake.add(300, { comm: 'bash', start: 5000 });
      const s = source(fake);
      const { seen, listener } = collect();
      await s.start(listener);
      expect(seen.map((x) => [x.p.pid, x.change])).toEqual([
        [1, 'present'],
        [300, 'present'],
      ]);
      expect(seen[0]!.p).toMatchObject({
        name: 'systemd',
        path: '/usr/lib/systemd/systemd',
        uid: 0,
        ppid: 0,
        startKey: '1',
        readPath: join(fake.root, '1', 'exe'),
      });
      // btime + starttime / USER_HZ.
      expect(seen[1]!.p.startedAtMs).toBe(1795330000 * 1000 + 50_000);
      fake.add(301, { comm: 'tshark', ppid: 300, start: 6000 });
      s.pollNow();
      s.pollNow();
      expect(seen.map((x) => [x.p.pid, x.change])).toEqual([
        [1, 'present'],
        [300, 'present'],
        [301, 'started'],
      ]);
      expect(s.stats.read).toBe(3);
    });

    it('reads a comm with spaces and parentheses, and keeps it beside the executable name when they differ', async () => {
      const fake = new FakeProc();
      const s = source(fake);
      const { seen, listener } = collect();
      await s.start(listener);
      fake.add(400, { comm: 'evil) 1 2 (x', start: 7000, exe: '/usr/bin/python3.12' });
      s.pollNow();
      expect(seen[0]!.p).toMatchObject({ pid: 400, name: 'python3.12', comm: 'evil) 1 2 (x', ppid: 1, startKey: '7000' });
    });

    it('marks kernel threads, which have no executable', async () => {
      const fake = new FakeProc();
      fake.add(2, { comm: 'kthreadd', ppid: 0, start: 1, flags: 0x00208040, exe: null, uid: 0 });
      const s = source(fake);
      const { seen, listener } = collect();
      await s.start(listener);
      expect(seen[0]!.p).toMatchObject({ pid: 2, name: 'kthreadd', kernelThread: true });
      expect(seen[0]!.p.path).toBeUndefined();
    });

    it('skips, without a word, a process that exited while it was read (its stat is gone)', async () => {
      const fake = new FakeProc();
      fake.add(500, { comm: 'gone', start: 1, statMissing: true });
      const s = source(fake);
      const { seen, listener } = collect();
      await s.start(listener);
      expect(seen).toEqual([]);
    });

    it('a pid given to a new process is a new process: its start time tells it apart, before a kill too', async () => {
      const fake = new FakeProc();
      fake.add(600, { comm: 'scratch', start: 100 });
      const s = source(fake);
      const { seen, listener } = collect();
      await s.start(listener);
      const first = seen[0]!.p;
      fake.remove(600);
      s.pollNow();
      fake.add(600, { comm: 'mimikatz', start: 900 });
      s.pollNow();
      expect(seen.map((x) => [x.p.pid, x.p.name, x.p.startKey, x.change])).toEqual([
        [600, 'scratch', '100', 'present'],
        [600, 'mimikatz', '900', 'started'],
      ]);
      expect(await s.isSame(first)).toBe(false);
      expect(await s.isSame(seen[1]!.p)).toBe(true);
      fake.remove(600);
      expect(await s.isSame(seen[1]!.p)).toBe(false);
    });

    it('notices a process that execs another program (same pid, same start time, new executable)', async () => {
      const fake = new FakeProc();
      const s = source(fake);
      const { seen, listener } = collect();
      await s.start(listener);
      fake.add(700, { comm: 'sh', start: 100, exe: '/usr/bin/dash' });
      s.pollNow();
      fake.exec(700, '/home/amy/wireshark');
      s.pollNow();
      expect(seen.map((x) => [x.p.name, x.change])).toEqual([
        ['dash', 'started'],
        ['wireshark', 'exec'],
      ]);
    });

    it('keeps going when /proc cannot be listed', async () => {
      const fake = new FakeProc();
      const s = source(fake);
      const { seen, listener } = collect();
      await s.start(listener);
      rmSync(fake.root, { recursive: true, force: true });
      expect(() => s.pollNow()).not.toThrow();
      expect(seen).toEqual([]);
    });
  });

  describe('when no process has been forked since the last listing', () => {
    /** A /proc whose pids are this process's own pid namespace's, with the pid the kernel handed out last in loadavg. */
    function namespaced(newest: number, execSweepPolls = 1) {
      const fake = new FakeProc();
      rmSync(join(fake.root, 'self'), { recursive: true });
      symlinkSync(String(process.pid), join(fake.root, 'self'));
      const forked = (pid: number) => writeFileSync(join(fake.root, 'loadavg'), `0.00 0.01 0.05 1/123 ${pid}\n`);
      forked(newest);
      const s = new ProcfsProcessSource({ procRoot: fake.root, intervalMs: 3_600_000, execSweepPolls });
      sources.push(s);
      return { fake, s, forked };
    }

    it('lists /proc again only once the last pid handed out changes, and then finds the new process', async () => {
      const { fake, s, forked } = namespaced(300);
      fake.add(300, { comm: 'bash', start: 5000 });
      const { seen, listener } = collect();
      await s.start(listener);
      s.pollNow(); // a second listing at the same pid: pid 300's fork is over by now
      s.pollNow();
      s.pollNow();
      expect(s.stats).toMatchObject({ polls: 4, unlisted: 2 });
      // A process in /proc that no fork made cannot happen; here it shows that the unlisted polls did not look.
      fake.add(299, { comm: 'ghost', start: 4000 });
      s.pollNow();
      expect(seen.map((x) => x.p.name)).toEqual(['bash']);

      fake.add(301, { comm: 'tshark', ppid: 300, start: 6000 });
      forked(301);
      s.pollNow();
      expect(seen.map((x) => [x.p.pid, x.change])).toEqual([
        [300, 'present'],
        [299, 'started'],
        [301, 'started'],
      ]);
    });

    it('finds a process that reached /proc only after the listing that began at its pid (fork attaches it a moment later)', async () => {
      const { fake, s } = namespaced(400);
      const { seen, listener } = collect();
      await s.start(listener); // pid 400 handed out, its process not yet in /proc
      fake.add(400, { comm: 'wireshark', start: 9000 });
      s.pollNow();
      expect(seen.map((x) => [x.p.pid, x.change])).toEqual([[400, 'started']]);
      expect(s.stats.unlisted).toBe(0);
    });

    it('counts a pid that wrapped round to a lower one as new', async () => {
      const { fake, s, forked } = namespaced(4_194_303);
      const { seen, listener } = collect();
      await s.start(listener);
      s.pollNow();
      s.pollNow();
      fake.add(300, { comm: 'tshark', start: 9000 });
      forked(300);
      s.pollNow();
      expect(seen.map((x) => [x.p.pid, x.change])).toEqual([[300, 'started']]);
    });

    it('still notices an exec between listings', async () => {
      const { fake, s } = namespaced(700);
      fake.add(700, { comm: 'sh', start: 100, exe: '/usr/bin/dash' });
      const { seen, listener } = collect();
      await s.start(listener);
      s.pollNow();
      fake.exec(700, '/home/amy/wireshark');
      s.pollNow();
      expect(s.stats.unlisted).toBe(1);
      expect(seen.map((x) => [x.p.pid, x.p.name, x.change])).toEqual([
        [700, 'dash', 'present'],
        [700, 'wireshark', 'exec'],
      ]);
    });

    it('gives a process read between its fork and its exec its second look, with no listing after it', async () => {
      // A hundred others, and a sweep of one a poll: only the second look can see this exec within two polls
      const { fake, s } = namespaced(701, 1000);
      for (let pid = 500; pid < 600; pid++) fake.add(pid, { comm: 'bash', start: 100 });
      const { seen, listener } = collect();
      await s.start(listener);
      fake.add(701, { comm: 'sh', start: 200, exe: '/usr/bin/dash' });
      s.pollNow(); // the second listing at 701 finds it, still the shell it was forked from
      fake.exec(701, '/home/amy/nmap');
      s.pollNow();
      expect(s.stats.unlisted).toBe(1);
      expect(seen.filter((x) => x.p.pid === 701).map((x) => [x.p.pid, x.p.name, x.change])).toEqual([
        [701, 'dash', 'started'],
        [701, 'nmap', 'exec'],
      ]);
    });

    it('leaves out of what is running the processes that ended since it last listed', async () => {
      const { fake, s } = namespaced(800);
      fake.add(800, { comm: 'sleep', start: 100 });
      fake.add(801, { comm: 'cat', start: 100 });
      const { listener } = collect();
      await s.start(listener);
      s.pollNow();
      fake.remove(801);
      s.pollNow();
      expect(s.stats.unlisted).toBe(1);
      expect(s.running().map((p) => p.pid)).toEqual([800]);
    });

    it("lists every time when loadavg is not the one of the /proc it lists (LXCFS lays its own over a container's)", async () => {
      const { fake, s } = namespaced(900);
      // A file on another file system, as a FUSE mount over /proc/loadavg is.
      const elsewhere = join(mkdtempSync('/dev/shm/invigilator-loadavg-'), 'loadavg');
      writeFileSync(elsewhere, '0.00 0.01 0.05 1/123 900\n');
      rmSync(join(fake.root, 'loadavg'));
      symlinkSync(elsewhere, join(fake.root, 'loadavg'));
      const { seen, listener } = collect();
      await s.start(listener);
      s.pollNow();
      s.pollNow();
      fake.add(850, { comm: 'tshark', start: 100 });
      s.pollNow();
      expect(s.stats.unlisted).toBe(0);
      expect(seen.map((x) => x.p.name)).toEqual(['tshark']);
      rmSync(dirname(elsewhere), { recursive: true, force: true });
    });

    it('lists every time when /proc is not of its own pid namespace, whose loadavg would not tell', async () => {
      const { fake, s } = namespaced(900);
      rmSync(join(fake.root, 'self'));
      symlinkSync('1', join(fake.root, 'self'));
      const { seen, listener } = collect();
      await s.start(listener);
      s.pollNow();
      s.pollNow();
      fake.add(850, { comm: 'tshark', start: 100 });
      s.pollNow();
      expect(s.stats.unlisted).toBe(0);
      expect(seen.map((x) => x.p.name)).toEqual(['tshark']);
    });
  });

  describe('on the real /proc', () => {
    it('sees a process this test starts, with its parent, executable, user and start time', async () => {
      const s = new ProcfsProcessSource({ intervalMs: 100 });
      sources.push(s);
      const { seen, listener } = collect();
      await s.start(listener);
      expect(seen.some((x) => x.p.pid === process.pid && x.change === 'present')).toBe(true);
      const child = spawn('sleep', ['600'], { stdio: 'ignore' });
      children.push(child);
      const found = await eventually(() => seen.find((x) => x.p.pid === child.pid && x.p.name === 'sleep'));
      expect(found.change).toBe('started');
      expect(found.p).toMatchObject({ ppid: process.pid, path: realpathSync('/bin/sleep'), uid: process.getuid!() });
      expect(found.p.startKey).toMatch(/^\d+$/);
      expect(Math.abs(found.p.startedAtMs! - Date.now())).toBeLessThan(10 * 60_000);
      expect(await s.isSame(found.p)).toBe(true);
      child.kill('SIGKILL');
      await eventually(() => (child.signalCode ? true : undefined));
      await eventually(async () => ((await s.isSame(found.p)) ? undefined : true));
      expect(s.running().some((p) => p.pid === process.pid)).toBe(true);
    });
  });
});

/**
 * The contract on the real /proc: this test's own process is there before
 * watching starts, `launch` starts a real sleep, `end` kills and reaps it.
 * Broken: a /proc that is not there.
 */
processSourceContract('Linux (/proc)', async (broken) => {
  const source = new ProcfsProcessSource({ intervalMs: 3_600_000, ...(broken ? { procRoot: join(tempDir('no-proc'), 'proc') } : {}) });
  const launched: ChildProcess[] = [];
  const rig: ProcessRig = {
    platform: 'linux',
    source,
    present: { pid: process.pid, name: basename(realpathSync(process.execPath)) },
    async launch() {
      const child = spawn('sleep', ['600'], { stdio: 'ignore' });
      launched.push(child);
      // Reported once it runs sleep, not the instant between fork and exec.
      await eventually(() => (child.pid !== undefined ? true : undefined));
      return { pid: child.pid!, name: basename(realpathSync('/bin/sleep')) };
    },
    look: async () => source.pollNow(),
    async end(pid) {
      const child = launched.find((c) => c.pid === pid)!;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    async close() {
      for (const c of launched) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    },
  };
  return rig;
});
