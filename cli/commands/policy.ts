import { readFile } from 'node:fs/promises';
import { PRESET_NAMES, preset } from '../../shared/policy/presets';
import { decodePolicy } from '../../shared/policy/validate';
import { parse } from '../args';
import { EXIT, type Io, reportProblems } from '../output';

export const POLICY_HELP = `Usage:
  invigilator policy show NAME        print a preset policy as JSON
  invigilator policy validate FILE    check a policy file (- or /dev/stdin reads standard input)

Presets: ${PRESET_NAMES.join(', ')}

validate exits 0 when the policy is valid, or 1 after printing one coded
error per problem, each with its JSON path, for example:
  INV_ERR_SCHEMA_VALUE at $.usbStorage.default.mode: Invalid option: ...`;

export async function policyCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {});
  const [sub, target, ...rest] = positionals;
  if (values.help || sub === undefined) {
    io.out(POLICY_HELP);
    return values.help ? EXIT.OK : EXIT.USAGE;
  }
  if (target === undefined || rest.length > 0) {
    io.err(`INV_ERR_USAGE: policy ${sub} takes exactly one argument\n\n${POLICY_HELP}`);
    return EXIT.USAGE;
  }
  if (sub === 'show') {
    const policy = preset(target);
    if (!policy) {
      io.err(`INV_ERR_POLICY_NOT_FOUND: no preset is called ${JSON.stringify(target)}; presets: ${PRESET_NAMES.join(', ')}`);
      return EXIT.INVALID;
    }
    io.out(JSON.stringify(policy, null, 2));
    return EXIT.OK;
  }
  if (sub === 'validate') {
    let bytes: Buffer;
    try {
      bytes = target === '-' || target === '/dev/stdin' ? await io.readStdin() : await readFile(target);
    } catch (e) {
      io.err(`INV_ERR_FILE_UNREADABLE at $: ${target}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      return EXIT.INVALID;
    }
    const result = decodePolicy(bytes);
    if (!result.ok) {
      reportProblems(io, `${target}: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}`, result.problems);
      return EXIT.INVALID;
    }
    io.out(`${target}: valid policy ${result.value.id} revision ${result.value.revision}`);
    return EXIT.OK;
  }
  io.err(`INV_ERR_USAGE: unknown policy command ${JSON.stringify(sub)}\n\n${POLICY_HELP}`);
  return EXIT.USAGE;
}
