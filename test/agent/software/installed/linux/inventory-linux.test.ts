import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { InvigilatorError } from '../../../../../shared/errors';
import { EVENT_DATA } from '../../../../../shared/protocol/events';
import {
  DPKG_QUERY,
  DPKG_QUERY_ARGS,
  LinuxPackageInventory,
  RPM,
  RPM_ARGS,
  parseDpkgQuery,
  parseRpmQuery,
} from '../../../../../agent/software/installed/linux/inventory-linux';
import { createExecFileRunner } from '../../../../../agent/os/command-runner';
import { RecordedCommands } from '../../../../../agent/os/recorded-commands';
import { inventoryRecording } from '../inventory-recording';
import { inventorySourceContract } from '../inventory-source-contract';
import type { CommandRunner } from '../../../../../agent/os/command-runner';

const DEBIAN12 = inventoryRecording('dpkg-query-debian12.txt');
const STATES = inventoryRecording('dpkg-query-states.txt');
const RHEL = inventoryRecording('rpm-qa-rhel.txt');

const hasDpkg = (() => {
  try {
    execFileSync('dpkg-query', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('dpkg-query output', () => {
  it('reads a real Debian 12 capture: every line a package, the maintainer without the address', () => {
    const { programs, skipped } = parseDpkgQuery(DEBIAN12);
    expect(skipped).toBe(0);
    expect(programs).toHaveLength(25);
    expect(programs[0]).toEqual({ name: 'adduser', version: '3.134', publisher: 'Debian Adduser Developers', source: 'dpkg' });
    expect(programs.find((p) => p.name === 'bsdutils')).toEqual({
      name: 'bsdutils',
      version: '1:2.38.1-5+deb12u3',
      publisher: 'util-linux packagers',
      source: 'dpkg',
    });
    for (const p of programs) expect(EVENT_DATA['software.installed'].safeParse(p).success).toBe(true);
  });

  it('counts installed packages only, once per name and version, and skips lines dpkg would not print', () => {
    const { programs, skipped } = parseDpkgQuery(STATES);
    expect(programs.map((p) => p.name)).toEqual(['adduser', 'apt', 'man-db', 'libc6', 'bash', 'scratch']);
    // The pre-1.17.11 `Status` form ends with the same word.
    expect(programs.find((p) => p.name === 'bash')?.version).toBe('5.2.15-2+b8');
    // A maintainer without an address is kept whole.
    expect(programs.find((p) => p.name === 'scratch')?.publisher).toBe('Miriam Ruiz');
    expect(skipped).toBe(2);
  });
});

describe('rpm output', () => {
  it('reads name, version-release and vendor; "(none)" is no vendor; signing keys are not software; two kernels are two', () => {
    const { programs, skipped } = parseRpmQuery(RHEL);
    expect(programs).toEqual([
      { name: 'bash', version: '5.1.8-9.el9', publisher: 'Red Hat, Inc.', source: 'rpm' },
      { name: 'kernel', version: '5.14.0-427.13.1.el9_4', publisher: 'Red Hat, Inc.', source: 'rpm' },
      { name: 'kernel', version: '5.14.0-503.11.1.el9_5', publisher: 'Red Hat, Inc.', source: 'rpm' },
      { name: 'firefox', version: '128.5.1-1.el9_5', publisher: 'Red Hat, Inc.', source: 'rpm' },
      { name: 'fping', version: '2.4-1.b2.2.el5.rf', publisher: 'Dag Apt Repository, http://dag.wieers.com/apt/', source: 'rpm' },
      { name: 'iftop', version: '0.17-1.el5', source: 'rpm' },
    ]);
    expect(skipped).toBe(1);
  });
});

describe('the Linux reader', () => {
  const dpkg = (answer: Parameters<RecordedCommands['record']>[2]) => (r: RecordedCommands) => r.record(DPKG_QUERY, DPKG_QUERY_ARGS, answer);
  const rpm = (answer: Parameters<RecordedCommands['record']>[2]) => (r: RecordedCommands) => r.record(RPM, RPM_ARGS, answer);
  const runner = (...steps: Array<(r: RecordedCommands) => RecordedCommands>) => steps.reduce((r, s) => s(r), new RecordedCommands());

  it('runs dpkg-query with the exact format, and rpm when it exists too', async () => {
    const r = runner(dpkg({ stdout: DEBIAN12 }), rpm({ stdout: RHEL }));
    const snapshot = await new LinuxPackageInventory(r).list();
    expect(r.calls).toEqual([
      { file: 'dpkg-query', args: ['-W', '-f=${Package}\\t${Version}\\t${Maintainer}\\t${db:Status-Status}\\n'] },
      { file: 'rpm', args: ['-qa', '--qf', '%{NAME}\\t%{VERSION}-%{RELEASE}\\t%{VENDOR}\\n'] },
    ]);
    expect(snapshot.sources).toEqual(['dpkg', 'rpm']);
    expect(snapshot.programs).toHaveLength(25 + 6);
    expect(snapshot.unread).toEqual([]);
  });

  it('uses whichever exists: rpm alone on a Fedora-like system, dpkg alone on Debian', async () => {
    const fedora = await new LinuxPackageInventory(runner(dpkg({ missing: true }), rpm({ stdout: RHEL }))).list();
    expect(fedora.sources).toEqual(['rpm']);
    const debian = await new LinuxPackageInventory(runner(dpkg({ stdout: DEBIAN12 }), rpm({ missing: true }))).list();
    expect(debian.sources).toEqual(['dpkg']);
    // An empty rpm database beside dpkg is an empty source, not a failure.
    const both = await new LinuxPackageInventory(runner(dpkg({ stdout: DEBIAN12 }), rpm({ stdout: '' }))).list();
    expect(both.sources).toEqual(['dpkg', 'rpm']);
  });

  it('leaves a source that fails unread, and fails with a code when nothing could be read', async () => {
    const oneFails = await new LinuxPackageInventory(runner(dpkg({ stdout: DEBIAN12 }), rpm({ stdout: '', code: 1 }))).list();
    expect(oneFails.sources).toEqual(['dpkg']);
    expect(oneFails.unread).toEqual([expect.objectContaining({ source: 'rpm', code: 'INV_ERR_INVENTORY_UNREADABLE' })]);

    const cases: Array<Array<(r: RecordedCommands) => RecordedCommands>> = [
      [dpkg({ missing: true }), rpm({ missing: true })],
      [dpkg({ hangs: true }), rpm({ missing: true })],
      // Garbage with exit 0, and an empty dpkg database: neither is an empty computer.
      [dpkg({ stdout: 'garbage\n\u0000\u0001\n<html>' }), rpm({ missing: true })],
      [dpkg({ stdout: '' }), rpm({ missing: true })],
    ];
    for (const steps of cases) {
      const error = await new LinuxPackageInventory(runner(...steps)).list().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvigilatorError);
      expect((error as InvigilatorError).code).toBe('INV_ERR_INVENTORY_UNREADABLE');
    }
  });

  it('survives a huge output: over the runner cap it is a coded failure, never a crash', async () => {
    const huge = `${'x'.repeat(1000)}\t1\tm\tinstalled\n`.repeat(2000);
    const r = new RecordedCommands(1024 * 1024).record(DPKG_QUERY, DPKG_QUERY_ARGS, { stdout: huge }).record(RPM, RPM_ARGS, { missing: true });
    const error = await new LinuxPackageInventory(r).list().catch((e: unknown) => e);
    expect((error as InvigilatorError).code).toBe('INV_ERR_INVENTORY_UNREADABLE');
    // Within the cap, an over-long name is cut to the schema's 256 characters.
    const long = parseDpkgQuery(`${'a'.repeat(5000)}\t1\tm\tinstalled\nok\t1\tm\tinstalled\n`);
    expect(long.programs.map((p) => p.name)).toEqual(['a'.repeat(256), 'ok']);
  });
});

(hasDpkg ? describe : describe.skip)(`the real dpkg-query on this machine${hasDpkg ? '' : ' [skipped: dpkg-query is not installed here]'}`, () => {
  it('lists every package the dpkg database holds as installed, with the version dpkg itself reports', async () => {
    const snapshot = await new LinuxPackageInventory(createExecFileRunner()).list();
    expect(snapshot.sources).toContain('dpkg');
    const dpkgPrograms = snapshot.programs.filter((p) => p.source === 'dpkg');

    // Independently of dpkg-query: the status database, stanza by stanza.
    const installed = new Set<string>();
    for (const stanza of readFileSync('/var/lib/dpkg/status', 'utf8').split(/\n\n+/)) {
      const name = /^Package: (.+)$/m.exec(stanza)?.[1];
      const status = /^Status: .* (\S+)$/m.exec(stanza)?.[1];
      const version = /^Version: (.+)$/m.exec(stanza)?.[1];
      if (name && status && ['installed', 'triggers-pending', 'triggers-awaited'].includes(status)) installed.add(`${name} ${version}`);
    }
    expect(new Set(dpkgPrograms.map((p) => `${p.name} ${p.version}`))).toEqual(installed);

    const ownVersion = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'dpkg'], { encoding: 'utf8' });
    expect(dpkgPrograms.find((p) => p.name === 'dpkg')?.version).toBe(ownVersion);
    for (const p of dpkgPrograms) expect(EVENT_DATA['software.installed'].safeParse(p).success).toBe(true);
  });
});

/**
 * The contract on this machine's real package database, through the real
 * runner. rpm is not installed here, so the unreadable source is rpm
 * answering with a failure beside the real dpkg-query; nothing is readable
 * when neither program can be started (the real runner, asked for each at
 * a path that does not exist).
 */
inventorySourceContract('Linux (the real dpkg-query and rpm)', async (scenario) => {
  const real = createExecFileRunner();
  const runner: CommandRunner = {
    run(file, args, timeoutMs) {
      if (scenario === 'nothing-readable') return real.run(`/nonexistent/${file}`, args, timeoutMs);
      if (scenario === 'one-unreadable' && file === RPM) return Promise.resolve({ stdout: '', code: 1 });
      return real.run(file, args, timeoutMs);
    },
  };
  return { source: new LinuxPackageInventory(runner), ...(scenario === 'one-unreadable' ? { unreadable: 'rpm' } : {}) };
});
