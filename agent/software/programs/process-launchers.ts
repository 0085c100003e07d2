/**
 * Programs that run other programs: the dynamic loader (`ld-linux`), which
 * maps the program named on its command line into its own process, and
 * script interpreters, whose executable is the interpreter while what runs
 * is the script. Pure: which names are which, and where on a command line
 * the program or script is. The Linux process source reads the command
 * line and resolves the path (process-image-linux.ts).
 *
 * Not covered, and said so in docs/architecture.md: code given on the
 * command line (`python -c`, `bash -c`, `perl -e`, `node -e`), a module
 * (`python -m`), a script read from standard input or typed at a prompt,
 * interpreters not listed here (java -jar, awk -f, tclsh, pwsh and the
 * like), and a program that rewrites its own command line before the agent
 * reads it (the loader's program is then found by what is mapped, see
 * process-image-linux.ts; a script is not).
 */

/**
 * glibc's and musl's loaders as their files are named: ld-linux-x86-64.so.2,
 * ld-linux.so.2, ld-linux-aarch64.so.1, ld-linux-armhf.so.3, ld64.so.1/2
 * (ppc64, s390x), ld.so.1, ld-2.31.so (glibc before 2.34), ld-musl-x86_64.so.1.
 */
const LOADER_NAME = /^(ld-linux(-[a-z0-9_-]+)?\.so\.\d+|ld64\.so\.\d+|ld\.so(\.\d+)?|ld-\d+(\.\d+)*\.so|ld-musl-[a-z0-9_]+\.so\.\d+)$/;

/** Whether an executable's base name is a dynamic loader's (a renamed copy is found by its ELF headers instead, see elfLooksLikeLoader). */
export function isLoaderName(name: string): boolean {
  return LOADER_NAME.test(name);
}

/** glibc's rtld options that take a value (elf/rtld.c, dl_main's option loop). */
const LOADER_VALUE_OPTIONS = new Set(['--library-path', '--inhibit-rpath', '--audit', '--preload', '--argv0', '--glibc-hwcaps-prepend', '--glibc-hwcaps-mask']);
/** Options after which the loader runs nothing (it lists, checks or prints). */
const LOADER_NO_PROGRAM = new Set(['--list', '--verify', '--help', '--version', '--list-tunables', '--list-diagnostics']);

/**
 * Where the program is in a loader's command line (`argv[0]` is the loader
 * itself): the first argument after its options, or undefined when it runs
 * none.
 */
export function loaderProgramIndex(argv: readonly string[]): number | undefined {
  for (let i = 1; i < argv.length && i < 64; i++) {
    const a = argv[i]!;
    if (LOADER_NO_PROGRAM.has(a)) return undefined;
    if (LOADER_VALUE_OPTIONS.has(a)) {
      i++;
      continue;
    }
    if (a === '--') return i + 1 < argv.length ? i + 1 : undefined;
    if (a.startsWith('--')) continue;
    return a === '' ? undefined : i;
  }
  return undefined;
}

/**
 * Whether the first bytes of an ELF file look like a loader's: a shared
 * object (ET_DYN) with a dynamic section and no interpreter of its own
 * (PT_INTERP). Every dynamically linked program names an interpreter; a
 * loader is the one that does not. A static PIE also matches; it is then
 * judged as itself, since nothing else is mapped into it.
 */
export function elfLooksLikeLoader(head: Buffer): boolean {
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = head[4] === 2;
  const little = head[5] === 1;
  if (!is64 && head[4] !== 1) return false;
  const u16 = (o: number) => (little ? head.readUInt16LE(o) : head.readUInt16BE(o));
  const u32 = (o: number) => (little ? head.readUInt32LE(o) : head.readUInt32BE(o));
  const ET_DYN = 3;
  if (u16(16) !== ET_DYN) return false;
  const phoff = is64 ? Number(little ? head.readBigUInt64LE(32) : head.readBigUInt64BE(32)) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  if (phentsize < (is64 ? 56 : 32) || phnum === 0 || phnum > 128) return false;
  const PT_DYNAMIC = 2;
  const PT_INTERP = 3;
  let dynamic = false;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > head.length) return false;
    const type = u32(at);
    if (type === PT_INTERP) return false;
    if (type === PT_DYNAMIC) dynamic = true;
  }
  return dynamic;
}

/** How one interpreter's command line is read. */
interface InterpreterSyntax {
  /** Short options (letters) that take a value: the rest of the same word, or the next word. */
  shortWithValue: string;
  /** Long options that take the next word as their value (`--opt=value` never does). */
  longWithValue: readonly string[];
  /** Options that mean the code is not in a file: given inline, a module, standard input. */
  inlineShort: string;
  inlineLong: readonly string[];
  /** Whether short options may be grouped (`-ec`). */
  grouped: boolean;
}

const SYNTAX: Record<string, InterpreterSyntax> = {
  sh: { shortWithValue: 'oO', longWithValue: ['--rcfile', '--init-file'], inlineShort: 'cs', inlineLong: [], grouped: true },
  python: { shortWithValue: 'WXQ', longWithValue: ['--check-hash-based-pycs'], inlineShort: 'cm', inlineLong: [], grouped: true },
  perl: { shortWithValue: 'IMm', longWithValue: [], inlineShort: 'eE', inlineLong: [], grouped: true },
  ruby: { shortWithValue: 'IrCEFK', longWithValue: [], inlineShort: 'e', inlineLong: [], grouped: true },
  node: {
    shortWithValue: 'rC',
    longWithValue: ['--require', '--import', '--loader', '--experimental-loader', '--conditions', '--title', '--input-type', '--env-file', '--inspect-port'],
    inlineShort: 'ep',
    inlineLong: ['--eval', '--print'],
    grouped: false,
  },
  php: { shortWithValue: 'cdz', longWithValue: [], inlineShort: 'rBRE', inlineLong: [], grouped: false },
  lua: { shortWithValue: 'l', longWithValue: [], inlineShort: 'e', inlineLong: [], grouped: false },
};

const INTERPRETER_NAMES: ReadonlyArray<[RegExp, keyof typeof SYNTAX]> = [
  [/^(sh|bash|dash|ash|zsh|ksh|ksh93|mksh|yash|posh)$/, 'sh'],
  [/^(python|pypy)(\d+(\.\d+)*)?m?$/, 'python'],
  [/^perl(\d+(\.\d+)*)?$/, 'perl'],
  [/^ruby(\d+(\.\d+)*)?$/, 'ruby'],
  [/^(node|nodejs)(\d+)?$/, 'node'],
  [/^php(\d+(\.\d+)*)?(-cli)?$/, 'php'],
  [/^(lua|luajit)(\d+(\.\d+)*)?$/, 'lua'],
];

/** The interpreter family of an executable's base name, if it is one. */
export function interpreterOf(name: string): string | undefined {
  for (const [re, family] of INTERPRETER_NAMES) if (re.test(name)) return family;
  return undefined;
}

export type ScriptArgument = { script: string } | { inline: true } | { none: true };

/**
 * The script an interpreter runs, from its command line (`argv[0]` is the
 * interpreter): the first argument after its options. `inline` when the
 * code is not in a file (`-c`, `-e`, `-m`, standard input), `none` when
 * there is no argument (an interactive prompt).
 */
export function scriptArgument(family: string, argv: readonly string[]): ScriptArgument {
  const syntax = SYNTAX[family];
  if (!syntax) return { none: true };
  for (let i = 1; i < argv.length && i < 256; i++) {
    const a = argv[i]!;
    if (a === '--') return i + 1 < argv.length ? { script: argv[i + 1]! } : { none: true };
    if (a === '-') return { inline: true };
    if (a.startsWith('--')) {
      const bare = a.split('=', 1)[0]!;
      if (syntax.inlineLong.includes(bare)) return { inline: true };
      if (!a.includes('=') && syntax.longWithValue.includes(a)) i++;
      continue;
    }
    if ((a.startsWith('-') || (family === 'sh' && a.startsWith('+'))) && a.length > 1) {
      const letters = a.slice(1);
      for (let j = 0; j < letters.length; j++) {
        const c = letters[j]!;
        if (syntax.inlineShort.includes(c)) return { inline: true };
        if (syntax.shortWithValue.includes(c)) {
          // The value is the rest of this word, or the next word.
          if (j === letters.length - 1) i++;
          break;
        }
        if (!syntax.grouped) break;
      }
      continue;
    }
    return a === '' ? { none: true } : { script: a };
  }
  return { none: true };
}
