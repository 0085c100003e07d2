import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventDraft } from '../../../../../agent/core/events';
import { preset } from '../../../../../shared/policy/presets';
import type { Policy, SoftwareSettings } from '../../../../../shared/policy/schema';
import { validatePolicy } from '../../../../../shared/policy/validate';
import { eventEnvelope } from '../../../../../shared/protocol';
import { validate } from '../../../../../shared/schema';
import { isAlive } from '../../../../support/cli';
import { SLEEP, TAIL, cleanUpMachines, machine, policyWith, sha256Of } from '../linux-guard-machine';

/**
 * The bypasses of the software rule a security review proved (issue 13,
 * finding 5), tried the way the review tried them: the real loader
 * (`ld-linux`), real interpreters, a real `unshare -Urm` with a tmpfs
 * mounted over an OS folder, renamed copies of /bin/sleep and real hash
 * rules. Every process here is started by the test and the guard's source is
 * narrowed to them (linux-guard-machine.ts).
 */

afterEach(cleanUpMachines);

const LOADER = realpathSync('/lib64/ld-linux-x86-64.so.2');
const PERL = realpathSync('/usr/bin/perl');
const BASH = realpathSync('/bin/bash');
const AMY = 1000;
const asRoot = process.getuid?.() === 0;

/** Blocks this one binary (a copy of sleep, under any name) by its hash. */
function hashBlocked(base: 'basildon-primary' | 'carrington-infant', sha256: string, extra: Partial<SoftwareSettings> = {}): Policy {
  return policyWith(base, {
    ...extra,
    rules: [{ id: 'that-binary', match: { sha256 }, action: 'terminate', note: 'a known keylogger', clause: 'bps-hacking-tools' }],
  });
}

function envelopeOk(e: EventDraft): boolean {
  return validate(eventEnvelope, { ...e, id: '00000000-0000-4000-8000-000000000000', seq: 1, deviceId: 'dev-1' }).ok;
}

type Seen = { name: string; path?: string; sha256?: string; via?: { kind: string; name: string; path: string }; script?: { path: string; sha256?: string } };
const processOf = (e: EventDraft) => (e.data as { process: Seen }).process;

describe('a program run through the loader is judged as the program it runs', () => {
  it('a hash-blocked program run as `ld-linux ./prog` is stopped, and the event names both', async () => {
    const m = await machine(hashBlocked('basildon-primary', sha256Of(SLEEP)));
    const prog = m.copy('homework');
    const { child, pid } = m.spawnOurs(LOADER, ['./homework', '600'], { cwd: join(m.dir, 'bin') });
    expect(await m.exited(child)).toBe('SIGKILL');
    const detected = await m.eventFor('software.detected', pid);
    expect(detected).toMatchObject({ data: { ruleId: 'that-binary', action: 'terminate' } });
    expect(processOf(detected)).toMatchObject({ name: 'homework', path: prog, sha256: sha256Of(SLEEP), via: { kind: 'loader', path: LOADER } });
    expect(m.events.every(envelopeOk)).toBe(true);
  });

  it('also when the loader is given options first (--library-path DIR, --argv0 NAME)', async () => {
    const m = await machine(hashBlocked('basildon-primary', sha256Of(SLEEP)));
    const prog = m.copy('homework');
    const withPath = m.spawnOurs(LOADER, ['--library-path', '/nowhere', './homework', '600'], { cwd: join(m.dir, 'bin') });
    const renamed = m.spawnOurs(LOADER, ['--argv0', 'innocent', prog, '600']);
    expect(await m.exited(withPath.child)).toBe('SIGKILL');
    expect(await m.exited(renamed.child)).toBe('SIGKILL');
    expect(processOf(await m.eventFor('software.detected', withPath.pid))).toMatchObject({ name: 'homework', path: prog });
    expect(processOf(await m.eventFor('software.detected', renamed.pid))).toMatchObject({ name: 'homework', path: prog });
  });

  it('also through a renamed copy of the loader', async () => {
    const m = await machine(hashBlocked('basildon-primary', sha256Of(SLEEP)));
    const loader = m.copy('my-launcher', { binary: LOADER });
    const prog = m.copy('homework');
    const { child, pid } = m.spawnOurs(loader, [prog, '600']);
    expect(await m.exited(child)).toBe('SIGKILL');
    expect(processOf(await m.eventFor('software.detected', pid))).toMatchObject({ name: 'homework', path: prog, via: { kind: 'loader', path: loader } });
  });

  it('also when the program rewrites its command line: what is mapped into the process outranks what it says', async () => {
    // A copy of perl, blocked by its hash, that overwrites its own argv as soon as it starts (`$0 = ...`).
    const m = await machine(hashBlocked('basildon-primary', sha256Of(PERL)));
    const prog = m.copy('homework', { binary: PERL });
    const { child, pid } = m.spawnOurs(LOADER, ['./homework', '-e', '$0 = "/usr/bin/sleep"; sleep 600'], { cwd: join(m.dir, 'bin') });
    expect(await m.exited(child)).toBe('SIGKILL');
    expect(processOf(await m.eventFor('software.detected', pid))).toMatchObject({
      name: 'homework',
      path: prog,
      sha256: sha256Of(PERL),
      via: { kind: 'loader' },
    });
  });

  it('a static PIE (no interpreter, like a loader) is judged as itself, not as the file it is given', async () => {
    const m = await machine(preset('basildon-primary')!);
    const c = join(m.dir, 'wait.c');
    writeFileSync(c, '#include <unistd.h>\nint main(void) { sleep(600); return 0; }\n');
    const built = spawnSync('cc', ['-static-pie', '-O2', '-o', join(m.dir, 'tshark'), c], { encoding: 'utf8' });
    if (built.status !== 0) {
      process.stdout.write(`software-bypass-linux: skipping the static PIE case: cc -static-pie fails here: ${String(built.error ?? built.stderr).trim()}\n`);
      return;
    }
    const input = join(m.dir, 'capture.txt');
    writeFileSync(input, 'not a program\n');
    const { child, pid } = m.spawnOurs(join(m.dir, 'tshark'), [input]);
    expect(await m.exited(child)).toBe('SIGKILL');
    expect(await m.eventFor('software.detected', pid)).toMatchObject({ data: { ruleId: 'cat-hacking-tool', process: { name: 'tshark' } } });
    expect(processOf(await m.eventFor('software.detected', pid)).via).toBeUndefined();
  });

  it('under an allowlist an unapproved program is stopped though the loader is the OS own, and an OS program through it runs on', async () => {
    const m = await machine(policyWith('carrington-infant', {}));
    m.copy('game');
    const game = m.spawnOurs(LOADER, ['./game', '600'], { cwd: join(m.dir, 'bin') });
    const tail = m.spawnOurs(LOADER, [TAIL, '-f', '/dev/null']);
    expect(await m.exited(game.child)).toBe('SIGKILL');
    expect(await m.eventFor('software.detected', game.pid)).toMatchObject({ data: { ruleId: 'unapproved', process: { name: 'game' } } });
    expect((await m.decidedFor(tail.pid, TAIL)).outcome.action).toBe('none');
    expect(isAlive(tail.pid)).toBe(true);
  });
});

describe("an interpreter's script is judged by the school's rules", () => {
  it('a hash rule on a script stops `perl script`, and a path rule stops `bash script`', async () => {
    const m = await machine(basildonWith([]));
    const scripts = join(m.dir, 'scripts');
    mkdirSync(scripts);
    const perlScript = join(scripts, 'keylogger.pl');
    writeFileSync(perlScript, 'sleep 600;\n');
    const bashScript = join(scripts, 'sniffer.sh');
    writeFileSync(bashScript, 'sleep 600 & wait\n');
    m.setPolicy(
      basildonWith([
        { id: 'that-script', match: { sha256: sha256Of(perlScript) }, action: 'terminate', note: 'a known keylogger', clause: 'bps-hacking-tools' },
        { id: 'scripts-folder', match: { pathPattern: `${scripts}/*.sh` }, action: 'terminate', note: 'scripts from outside', clause: 'bps-program-files' },
      ]),
    );
    const perl = m.spawnOurs(PERL, ['-w', 'keylogger.pl'], { cwd: scripts });
    const bash = m.spawnOurs(BASH, ['--norc', bashScript]);
    expect(await m.exited(perl.child)).toBe('SIGKILL');
    expect(await m.exited(bash.child)).toBe('SIGKILL');
    const byHash = await m.eventFor('software.detected', perl.pid);
    expect(byHash).toMatchObject({ data: { ruleId: 'that-script' } });
    expect(processOf(byHash)).toMatchObject({ path: PERL, script: { path: perlScript, sha256: sha256Of(perlScript) } });
    expect(await m.eventFor('software.detected', bash.pid)).toMatchObject({ data: { ruleId: 'scripts-folder', process: { script: { path: bashScript } } } });
    expect(m.events.every(envelopeOk)).toBe(true);
  });
});

function basildonWith(rules: SoftwareSettings['rules']): Policy {
  return policyWith('basildon-primary', { rules });
}

/**
 * Whether a pupil's account can make a private mount namespace here and
 * mount a tmpfs in it (as `unshare -Urm` does on Ubuntu and Debian by
 * default); the reason it cannot, if not.
 */
function privateMountsUnavailable(): string | undefined {
  if (!asRoot) return 'the processes must belong to a pupil (uid 1000), which needs root to arrange';
  const probe = spawnSync('unshare', ['-Urm', 'sh', '-c', 'mount -t tmpfs tmpfs /usr/lib/systemd'], { uid: AMY, gid: AMY, cwd: '/', encoding: 'utf8' });
  if (probe.status !== 0) return `unshare -Urm with a tmpfs fails here as uid ${AMY}: ${String(probe.error ?? probe.stderr).trim()}`;
  return undefined;
}

const unavailable = privateMountsUnavailable();
if (unavailable) process.stdout.write(`software-bypass-linux: skipping the private mount namespace cases: ${unavailable}\n`);
const describeWithNamespaces = unavailable ? describe.skip : describe;

describeWithNamespaces('a pupil in a private mount namespace (`unshare -Urm`, a tmpfs over an OS folder)', () => {
  /** A pupil's shell that makes the namespace, mounts a tmpfs on `folder`, copies `binary` to `folder/name` and execs `command` (default: that copy). */
  function inPrivateMounts(m: Awaited<ReturnType<typeof machine>>, o: { folder: string; name: string; binary?: string; command?: string; asUid?: number }) {
    // Amy must be able to read the copy she brings in.
    chmodSync(m.dir, 0o755);
    const source = join(m.dir, 'amys', o.name);
    mkdirSync(join(m.dir, 'amys'), { recursive: true, mode: 0o755 });
    copyFileSync(o.binary ?? SLEEP, source);
    chmodSync(source, 0o755);
    const inside = `${o.folder}/${o.name}`;
    const script = `mount -t tmpfs tmpfs ${o.folder} && cp "$0" ${inside} && exec ${o.command ?? `${inside} 600`}`;
    const uid = o.asUid ?? AMY;
    return { ...m.spawnOurs('unshare', [...(uid === 0 ? ['-m'] : ['-Urm']), 'sh', '-c', script, source], { uid, gid: uid, cwd: '/' }), inside };
  }

  it('a hash-blocked program named systemd-logind over /usr/lib/systemd is stopped, not spared as part of the OS', async () => {
    const m = await machine(hashBlocked('basildon-primary', sha256Of(SLEEP)));
    const { child, pid, inside } = inPrivateMounts(m, { folder: '/usr/lib/systemd', name: 'systemd-logind' });
    expect(await m.exited(child)).toBe('SIGKILL');
    const detected = await m.eventFor('software.detected', pid);
    expect(detected).toMatchObject({ data: { ruleId: 'that-binary', process: { name: 'systemd-logind', path: inside, sha256: sha256Of(SLEEP) } } });
    expect(m.events.every(envelopeOk)).toBe(true);
  });

  it('under an allowlist a program in a tmpfs under /usr is not approved as part of the OS', async () => {
    const m = await machine(policyWith('carrington-infant', {}));
    const { child, pid } = inPrivateMounts(m, { folder: '/usr/lib/systemd', name: 'free-game' });
    expect(await m.exited(child)).toBe('SIGKILL');
    expect(await m.eventFor('software.detected', pid)).toMatchObject({ data: { ruleId: 'unapproved', process: { name: 'free-game' } } });
  });

  it("is suspect whatever the program's name: Basildon's policy stops a pupil's and says what was seen", async () => {
    const m = await machine(preset('basildon-primary')!);
    const { child, pid, inside } = inPrivateMounts(m, { folder: '/usr/local/bin', name: 'homework' });
    expect(await m.exited(child)).toBe('SIGKILL');
    const detected = await m.eventFor('software.detected', pid);
    expect(detected).toMatchObject({
      data: {
        ruleId: 'private-mounts',
        category: 'private-mounts',
        action: 'terminate',
        process: { name: 'homework', path: inside, mountNamespace: 'private', pathVouched: false },
      },
      clause: { id: 'bps-bypass-controls' },
      user: { osId: String(AMY) },
    });
    expect(m.events.every(envelopeOk)).toBe(true);
    expect(m.notices.map((n) => n.uid)).toEqual([AMY]);
  });

  it('a script on the tmpfs is read through the namespace and caught by its hash', async () => {
    const m = await machine(preset('basildon-primary')!);
    const script = join(m.dir, 'keylogger.pl');
    writeFileSync(script, 'sleep 600;\n');
    m.setPolicy(
      basildonWith([{ id: 'that-script', match: { sha256: sha256Of(script) }, action: 'terminate', note: 'a known keylogger', clause: 'bps-hacking-tools' }]),
    );
    const { child, pid, inside } = inPrivateMounts(m, {
      folder: '/usr/local/lib',
      name: 'keylogger.pl',
      binary: script,
      command: `${PERL} /usr/local/lib/keylogger.pl`,
    });
    expect(await m.exited(child)).toBe('SIGKILL');
    expect(await m.eventFor('software.detected', pid)).toMatchObject({ data: { ruleId: 'that-script', process: { path: PERL, script: { path: inside } } } });
  });

  it("leaves alone what the namespace does not disguise (the computer's own tail, as a snap runs), and root's namespaces", async () => {
    const m = await machine(preset('basildon-primary')!);
    const amys = inPrivateMounts(m, { folder: '/usr/local/bin', name: 'unused', command: `${TAIL} -f /dev/null` });
    const roots = inPrivateMounts(m, { folder: '/usr/local/bin', name: 'service', asUid: 0 });
    expect((await m.decidedFor(amys.pid, TAIL)).outcome.action).toBe('none');
    expect((await m.decidedFor(roots.pid, roots.inside)).outcome.action).toBe('none');
    await m.guard.settled();
    expect(isAlive(amys.pid) && isAlive(roots.pid)).toBe(true);
    expect(m.events).toEqual([]);
  });
});

describe('the new policy setting', () => {
  it('is in both presets, citing a clause of each', () => {
    for (const id of ['basildon-primary', 'carrington-infant'] as const) {
      const p = preset(id)!;
      expect(validatePolicy(p).ok).toBe(true);
      expect(p.software.default.privateMounts.action).toBe('report');
      expect(p.software.roles?.pupil?.privateMounts?.action).toBe('terminate');
      expect(p.clauses[p.software.default.privateMounts.clause]).toBeDefined();
    }
  });
});
