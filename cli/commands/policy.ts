import { readFile } from 'node:fs/promises';
import { PRESET_NAMES, preset } from '../../shared/policy/presets';
import { decodePolicy } from '../../shared/policy/validate';
import { checkRevision } from '../../shared/policy/revision-check';
import type { Policy } from '../../shared/policy/schema';
import { loadPolicy } from '../../node-common/policy-source';
import { parse } from '../args';
import { EXIT, type Io, reportProblems } from '../output';

export const POLICY_HELP = `Usage:
  invigilator policy show NAME        print a preset policy as JSON
  invigilator policy validate FILE [--against NAME|FILE]
                                      check a policy file (- or /dev/stdin reads standard input)

Presets: ${PRESET_NAMES.join(', ')}

validate exits 0 when the policy is valid, or 1 after printing one coded
error per problem, each with its JSON path, for example:
  INV_ERR_SCHEMA_VALUE at $.usbStorage.default.mode: Invalid option: ...

--against NAME|FILE compares with the policy in force (what the collector's
--policy names: a preset or a file). When the policy differs but its revision
was not raised, it warns (still exit 0): the collector pushes a policy only to
agents holding another revision, so theirs would never change.`;

export async function policyCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { against: { type: 'string' } });
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
    if (values.against === undefined) {
      io.out(`${target}: valid policy ${result.value.id} revision ${result.value.revision}`);
      return EXIT.OK;
    }
    const previous = await loadPolicy(values.against);
    if (!previous.ok) {
      reportProblems(io, `The policy to compare with (--against ${values.against}) is not valid:`, previous.problems);
      return EXIT.USAGE;
    }
    return reportRevision(io, target, result.value, values.against, previous.value);
  }
  io.err(`INV_ERR_USAGE: unknown policy command ${JSON.stringify(sub)}\n\n${POLICY_HELP}`);
  return EXIT.USAGE;
}

function reportRevision(io: Io, target: string, next: Policy, against: string, previous: Policy): number {
  const valid = `${target}: valid policy ${next.id} revision ${next.revision}`;
  const check = checkRevision(next, previous);
  switch (check.kind) {
    case 'other-policy':
      io.out(`${valid} (${against} is another policy, ${check.previousId}: no revision to compare)`);
      break;
    case 'same':
      io.out(`${valid}, the same as ${against}`);
      break;
    case 'raised':
      io.out(`${valid} (${against} has revision ${check.previous})`);
      break;
    case 'not-raised': {
      io.out(valid);
      const what = check.changed.length > 0 ? `they differ in ${check.changed.join(', ')}` : 'its revision is lower';
      const why =
        next.revision === check.previous
          ? `agents that already hold revision ${next.revision} would never be sent it, and users would not be asked to agree again`
          : 'a revision must go up with every change, or agents and agreements cannot tell the newer policy';
      io.err(
        `warning INV_ERR_POLICY_REVISION_STALE: ${target} has revision ${next.revision} and ${against} has revision ${check.previous}, but ${what}: ` +
          `${why}. Set "revision" to ${check.previous + 1}.`,
      );
      break;
    }
  }
  return EXIT.OK;
}
