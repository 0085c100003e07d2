import { parseArgs } from 'node:util';
import { InvigilatorError } from '../shared/errors';

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** Strict parsing: an unknown option or a missing value is a usage error with a code, not a stack trace. */
export function parse<O extends OptionSpec>(
  argv: string[],
  options: O,
): { values: { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string } & { help?: boolean }; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as never, positionals };
  } catch (e) {
    throw new InvigilatorError('INV_ERR_USAGE', e instanceof Error ? e.message.replace(/\. To specify.*$/s, '') : String(e));
  }
}

export function wantsHelp(argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}
