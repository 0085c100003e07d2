import { readFileSync, realpathSync, statSync } from 'node:fs';
import { makedev } from '../../../../agent/software/programs/linux/process-image-linux';
import { elfLooksLikeLoader, interpreterOf, isLoaderName, loaderProgramIndex, scriptArgument } from '../../../../agent/software/programs/process-launchers';

const head = (path: string) => readFileSync(path).subarray(0, 4096);

describe('programs that run other programs', () => {
  it("knows the loaders' names, and not the linker's or ldconfig's", () => {
    const loaders = [
      'ld-linux-x86-64.so.2',
      'ld-linux.so.2',
      'ld-linux-aarch64.so.1',
      'ld-linux-armhf.so.3',
      'ld64.so.2',
      'ld.so.1',
      'ld-2.31.so',
      'ld-musl-x86_64.so.1',
    ];
    expect(loaders.filter(isLoaderName)).toEqual(loaders);
    expect(['ld', 'ld.bfd', 'ld.gold', 'ldconfig', 'ldd', 'gold', 'libc.so.6', 'sleep'].filter(isLoaderName)).toEqual([]);
  });

  it("finds the program on a loader's command line past its options, and none when it only lists or prints", () => {
    const L = '/lib64/ld-linux-x86-64.so.2';
    expect(loaderProgramIndex([L, './prog', '600'])).toBe(1);
    expect(loaderProgramIndex([L, '--library-path', '/x', '--argv0', 'innocent', '--inhibit-cache', './prog'])).toBe(6);
    expect(loaderProgramIndex([L, '--preload', 'a.so', '--', '--weird-name'])).toBe(4);
    expect(loaderProgramIndex([L, '--list', './prog'])).toBeUndefined();
    expect(loaderProgramIndex([L, '--version'])).toBeUndefined();
    expect(loaderProgramIndex([L])).toBeUndefined();
    expect(loaderProgramIndex([L, '--argv0'])).toBeUndefined();
  });

  it('tells a loader from a program by its ELF headers: the real loader and a copy are, sleep and libc are not', () => {
    expect(elfLooksLikeLoader(head(realpathSync('/lib64/ld-linux-x86-64.so.2')))).toBe(true);
    expect(elfLooksLikeLoader(head(realpathSync('/bin/sleep')))).toBe(false);
    expect(elfLooksLikeLoader(head(realpathSync('/lib/x86_64-linux-gnu/libc.so.6')))).toBe(false);
    expect(elfLooksLikeLoader(Buffer.from('#!/bin/sh\necho hello\n'))).toBe(false);
    expect(elfLooksLikeLoader(Buffer.alloc(10))).toBe(false);
    // Headers that claim more program headers than were read are not believed.
    const cut = Buffer.from(head(realpathSync('/lib64/ld-linux-x86-64.so.2')).subarray(0, 100));
    expect(elfLooksLikeLoader(cut)).toBe(false);
  });

  it('knows the interpreters by name', () => {
    expect(
      ['python3', 'python3.11', 'python', 'pypy3', 'bash', 'dash', 'sh', 'zsh', 'perl', 'perl5.36.0', 'node', 'nodejs', 'ruby3.1', 'php8.2', 'lua5.4'].map(
        interpreterOf,
      ),
    ).toEqual(['python', 'python', 'python', 'python', 'sh', 'sh', 'sh', 'sh', 'perl', 'perl', 'node', 'node', 'ruby', 'php', 'lua']);
    expect(['sleep', 'pythonista', 'bashful', 'nodemon'].map(interpreterOf)).toEqual([undefined, undefined, undefined, undefined]);
  });

  it.each([
    ['python', ['python3', 'x.py', '-c', 'y'], { script: 'x.py' }],
    ['python', ['python3', '-u', '-B', 'x.py'], { script: 'x.py' }],
    ['python', ['python3', '-W', 'ignore', 'x.py'], { script: 'x.py' }],
    ['python', ['python3', '-Wignore', '-X', 'dev', 'x.py'], { script: 'x.py' }],
    ['python', ['python3', '-Bc', 'import os'], { inline: true }],
    ['python', ['python3', '-m', 'http.server'], { inline: true }],
    ['python', ['python3', '-'], { inline: true }],
    ['python', ['python3'], { none: true }],
    ['sh', ['bash', '--norc', '-e', './x.sh', 'arg'], { script: './x.sh' }],
    ['sh', ['bash', '-o', 'pipefail', '+O', 'extglob', 'x.sh'], { script: 'x.sh' }],
    ['sh', ['bash', '--rcfile', 'rc', 'x.sh'], { script: 'x.sh' }],
    ['sh', ['sh', '-ec', 'sleep 1'], { inline: true }],
    ['sh', ['bash', '-s'], { inline: true }],
    ['sh', ['bash', '--', '-x.sh'], { script: '-x.sh' }],
    ['perl', ['perl', '-w', '-I', 'lib', 'x.pl'], { script: 'x.pl' }],
    ['perl', ['perl', '-Ilib', '-MFoo', 'x.pl'], { script: 'x.pl' }],
    ['perl', ['perl', '-we', 'sleep 1'], { inline: true }],
    ['node', ['node', '--require', 'a', '--inspect=9229', 'x.js'], { script: 'x.js' }],
    ['node', ['node', '-r', 'a', 'x.js'], { script: 'x.js' }],
    ['node', ['node', '--eval=1'], { inline: true }],
    ['node', ['node', '-p', '1'], { inline: true }],
    ['ruby', ['ruby', '-I', 'lib', 'x.rb'], { script: 'x.rb' }],
    ['php', ['php', '-d', 'a=b', 'x.php'], { script: 'x.php' }],
    ['php', ['php', '-r', 'echo 1;'], { inline: true }],
    ['lua', ['lua', '-l', 'm', 'x.lua'], { script: 'x.lua' }],
  ] as const)('%s %j', (family, argv, expected) => {
    expect(scriptArgument(family, argv)).toEqual(expected);
  });

  it("turns /proc/PID/maps' major:minor into the st_dev that stat gives", () => {
    const maps = readFileSync('/proc/self/maps', 'utf8').split('\n');
    const line = maps.find((l) => / r-xp .* \/.+$/.test(l))!;
    const [, , , dev, ino, path] = line.split(/\s+/);
    const [major, minor] = dev!.split(':').map((h) => parseInt(h, 16));
    const s = statSync(path!, { bigint: true });
    expect({ dev: makedev(major!, minor!), ino: BigInt(ino!) }).toEqual({ dev: s.dev, ino: s.ino });
    expect(makedev(254, 0)).toBe(65024n);
    expect(makedev(259, 70000)).toBe((259n << 8n) | (70000n & 0xffn) | ((70000n & 0xffffff00n) << 12n));
  });
});
