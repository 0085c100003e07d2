import { join } from 'node:path';
import type { Platform } from '../shared/protocol';
import { type ErrorCode, InvigilatorError, formatProblems } from '../shared/errors';
import { wantsHelp } from './args';
import type * as AgentCommand from './commands/agent';
import type * as CollectorCommand from './commands/collector';
import type * as PolicyCommand from './commands/policy';
import type * as StartCommand from './commands/start';
import type * as UsbCommand from './commands/usb';
import { EXIT, type Io, processIo } from './output';
import { VERSION } from './version';

export const MAIN_HELP = `Invigilator ${VERSION}: device control for schools.

Usage: invigilator COMMAND [options]

Commands:
  agent --config FILE                           run the agent service on this machine
  collector --db sqlite:PATH|postgres://URL     run the collector
  policy show NAME                              print a preset policy as JSON
  policy validate FILE [--against NAME|FILE]    check a policy file
  usb classify PATH                             is this image or device encrypted?
  start                                         collector and agent together, for trying it out

Run \`invigilator COMMAND --help\` for a command's options.`;

/**
 * Mistakes in what the operator gave (the command line, the configuration or a
 * file or folder it names): exit 2, with a sentence saying what to change.
 * Exit 3 is left for failures while running.
 */
const OPERATOR_MISTAKES = new Set<ErrorCode>([
  'INV_ERR_USAGE',
  'INV_ERR_CONFIG_INVALID',
  'INV_ERR_CONFIG_UNREADABLE',
  'INV_ERR_FILE_UNREADABLE',
  'INV_ERR_DATA_DIR_NOT_A_FOLDER',
  'INV_ERR_DATA_DIR_UNWRITABLE',
  'INV_ERR_DATA_DIR_UNSAFE',
  'INV_ERR_STORE_UNWRITABLE',
  'INV_ERR_STORE_CORRUPT',
  'INV_ERR_TLS_INVALID',
  'INV_ERR_PORT_IN_USE',
]);

/** Whether POSIX owners and modes apply to the data folders (not on Windows, where the installer's ACL protects them). */
const POSIX_MODES = process.platform !== 'win32';

/** The composition root's one platform decision: which OS this agent is on. */
function currentPlatform(): Platform {
  const p = process.platform;
  if (p === 'linux' || p === 'win32' || p === 'darwin') return p;
  throw new InvigilatorError('INV_ERR_NOT_SUPPORTED', `Invigilator runs on Linux, Windows and macOS, not ${p}`);
}

/**
 * Each command's code is loaded when that command runs, not before: the agent
 * service runs for months on every school computer, and loading the
 * collector's database drivers and HTTP stack with it cost it memory it never
 * uses (issue 14: `npm run bench -- agent-idle`).
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const commands = {
  agent: () => require('./commands/agent') as typeof AgentCommand,
  collector: () => require('./commands/collector') as typeof CollectorCommand,
  policy: () => require('./commands/policy') as typeof PolicyCommand,
  start: () => require('./commands/start') as typeof StartCommand,
  usb: () => require('./commands/usb') as typeof UsbCommand,
};
/* eslint-enable @typescript-eslint/no-require-imports */

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'agent':
        return await commands.agent().agentCommand(rest, io, currentPlatform());
      case 'collector':
        return await commands.collector().collectorCommand(rest, io, POSIX_MODES);
      case 'policy':
        return await commands.policy().policyCommand(rest, io);
      case 'usb':
        return await commands.usb().usbCommand(rest, io);
      case 'start':
        return await commands.start().startCommand(rest, io, join(__dirname, '../../bin/invigilator.js'), POSIX_MODES);
      case '--version':
      case '-v':
        io.out(VERSION);
        return EXIT.OK;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(MAIN_HELP);
        return command === undefined ? EXIT.USAGE : EXIT.OK;
      default:
        io.err(`INV_ERR_USAGE: unknown command ${JSON.stringify(command)}\n\n${MAIN_HELP}`);
        return EXIT.USAGE;
    }
  } catch (e) {
    if (e instanceof InvigilatorError) {
      io.err(`${e.code}: ${e.message}${e.problems.length ? `\n${formatProblems(e.problems)}` : ''}`);
      if (e.code === 'INV_ERR_USAGE' && !wantsHelp(rest)) io.err(`Run \`invigilator ${command ?? ''} --help\` for usage.`);
      return OPERATOR_MISTAKES.has(e.code) ? EXIT.USAGE : EXIT.FAILED;
    }
    io.err(`INV_ERR_INTERNAL: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return EXIT.FAILED;
  }
}
