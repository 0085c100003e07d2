import type { Command } from '../../shared/protocol';
import type { Logger } from '../../node-common/logging';
import type { CommandError } from './capability';
import type { Recorder } from './events';

export interface CommandInboxDeps {
  carryOut: (command: Command) => Promise<CommandError | undefined>;
  /** Tells the collector how it went (the link's `sendCommandResult`). */
  sendResult: (commandId: string, ok: boolean, error?: CommandError) => void;
  record: Recorder;
  logger: Logger;
}

/** Commands remembered, so that one delivered again is not carried out twice. */
const SEEN_KEPT = 1000;

/**
 * Commands from the collector: each carried out once (delivery is at least
 * once), its result sent back and recorded as `command.completed`.
 */
export function commandInbox(deps: CommandInboxDeps): (commandId: string, command: Command) => void {
  const log = deps.logger.child({ component: 'agent' });
  const seen = new Set<string>();
  return (commandId, command) => {
    if (seen.has(commandId)) return;
    seen.add(commandId);
    if (seen.size > SEEN_KEPT) seen.delete(seen.values().next().value!);
    log.info('command received', { commandId, kind: command.kind });
    deps.carryOut(command).then(
      (error) => {
        deps.sendResult(commandId, error === undefined, error);
        return deps.record({
          type: 'command.completed',
          severity: 'notice',
          time: new Date().toISOString(),
          data: { commandId, ok: error === undefined, ...(error ? { code: error.code } : {}) },
        });
      },
      (e: unknown) => log.error('command failed', { commandId, error: String(e) }),
    );
  };
}
