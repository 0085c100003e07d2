import { join } from 'node:path';
import type { Platform } from '../shared/protocol';
import { InvigilatorError, formatProblems } from '../shared/errors';
import { wantsHelp } from './args';
import { agentCommand } from './commands/agent';
import { collectorCommand } from './commands/collector';
import { policyCommand } from './commands/policy';
import { startCommand } from './commands/start';
import { usbCommand } from './commands/usb';
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

/** The composition root's one platform decision: which OS this agent is on. */
function currentPlatform(): Platform {
  const p = process.platform;
  if (p === 'linux' || p === 'win32' || p === 'darwin') return p;
  throw new InvigilatorError('INV_ERR_NOT_SUPPORTED', `Invigilator runs on Linux, Windows and macOS, not ${p}`);
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'agent':
        return await agentCommand(rest, io, currentPlatform());
      case 'collector':
        return await collectorCommand(rest, io);
      case 'policy':
        return await policyCommand(rest, io);
      case 'usb':
        return await usbCommand(rest, io);
      case 'start':
        return await startCommand(rest, io, join(__dirname, '../../bin/invigilator.js'));
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
      return e.code === 'INV_ERR_USAGE' || e.code === 'INV_ERR_CONFIG_INVALID' ? EXIT.USAGE : EXIT.FAILED;
    }
    io.err(`INV_ERR_INTERNAL: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return EXIT.FAILED;
  }
}
