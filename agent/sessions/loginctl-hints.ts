import type { CommandRunner } from '../os/command-runner';
import { type IdleHintSource, idleSecondsFromLoginctl } from './logind-idle-hint';
import type { SessionDirectory, UserSession } from './session-directory';
import type { LockSource } from './session-watcher';

const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** The properties asked for: `Id` names each block of the answer, the others are the hints. */
const PROPERTIES = ['-p', 'Id', '-p', 'LockedHint', '-p', 'IdleHint', '-p', 'IdleSinceHint'];
/** One answer serves every question asked within this long: a 5 s tick asks for the lock, then the idle hint, of each session. */
const DEFAULT_MAX_AGE_MS = 2_000;
const TIMEOUT_MS = 10_000;

/**
 * Splits what `loginctl show-session A B ...` printed into one `Key=value`
 * text per session, by its `Id=`: loginctl prints the sessions' properties
 * one block after another with an empty line between.
 */
export function loginctlBlocks(stdout: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const block of stdout.split(/\n\s*\n/)) {
    const id = /(?:^|\n)Id=([^\n]*)/.exec(block)?.[1]?.trim();
    if (id && SESSION_ID.test(id) && !blocks.has(id)) blocks.set(id, block);
  }
  return blocks;
}

interface Answer {
  at: number;
  ids: ReadonlySet<string>;
  blocks: Promise<Map<string, string>>;
}

/**
 * Linux: logind's screen-lock and idle hints (`LockedHint`, `IdleHint`,
 * `IdleSinceHint`), which its session files do not hold (`session_save()`
 * writes none), for every session in one `loginctl show-session` run.
 *
 * Each tick asks, for every session, whether it is locked and how long it
 * has been idle; a `loginctl` per question cost the idle agent 0.4 % of a
 * core (issue 14, `npm run bench -- agent-idle`). One run answers every
 * question asked within `maxAgeMs`. Idle time is still counted at the moment
 * it is asked for, from the `IdleSinceHint` in that answer.
 *
 * loginctl stops at the first id it cannot show (a session that ended
 * between the session files being read and loginctl asking logind), having
 * printed those before it: that one gets no answer, and those after it are
 * asked again, so a session's answer does not depend on another's having
 * gone. A logind that answers nothing is asked at most twice a tick.
 */
export class LoginctlHints implements LockSource, IdleHintSource {
  private last: Answer | undefined;
  private readonly maxAgeMs: number;
  private readonly now: () => number;
  /** loginctl runs, for the tests and the benchmark. */
  readonly stats = { runs: 0 };

  constructor(
    private readonly runner: CommandRunner,
    private readonly directory: SessionDirectory,
    options: { maxAgeMs?: number; now?: () => number } = {},
  ) {
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    this.now = options.now ?? Date.now;
  }

  async isLocked(session: UserSession): Promise<boolean | undefined> {
    const block = await this.propertiesOf(session.sessionId);
    const value = block === undefined ? undefined : /(?:^|\n)LockedHint=([^\n]*)/.exec(block)?.[1]?.trim();
    return value === 'yes' ? true : value === 'no' ? false : undefined;
  }

  async idleSecondsOf(session: UserSession): Promise<number | undefined> {
    const block = await this.propertiesOf(session.sessionId);
    return block === undefined ? undefined : idleSecondsFromLoginctl(block, session.kind, this.now());
  }

  /** The session's `Key=value` lines, or undefined when loginctl cannot say. */
  private async propertiesOf(sessionId: string): Promise<string | undefined> {
    // The id goes on loginctl's command line: nothing that could be read as an option.
    if (!SESSION_ID.test(sessionId)) return undefined;
    const at = this.now();
    let answer = this.last;
    if (!answer || at - answer.at >= this.maxAgeMs || !answer.ids.has(sessionId)) {
      answer = this.ask(at, sessionId);
      this.last = answer;
    }
    return (await answer.blocks).get(sessionId);
  }

  private ask(at: number, wanted: string): Answer {
    // Filled in before `blocks` settles: a question for another session meanwhile asks afresh, which is only a run more.
    const ids = new Set<string>([wanted]);
    const blocks = (async () => {
      // The session files cost no process; the one asked for goes in even if they no longer list it.
      for (const s of await this.directory.sessions().catch(() => [])) if (SESSION_ID.test(s.sessionId)) ids.add(s.sessionId);
      return this.run([...ids]);
    })();
    return { at, ids, blocks };
  }

  private async run(ids: string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    let rest = ids;
    for (let run = 0; rest.length > 0; run++) {
      this.stats.runs++;
      const result = await this.runner.run('loginctl', ['show-session', ...rest, ...PROPERTIES], TIMEOUT_MS).catch(() => undefined);
      if (!result) break;
      const before = found.size;
      for (const [id, block] of loginctlBlocks(result.stdout)) if (rest.includes(id) && !found.has(id)) found.set(id, block);
      if (result.code === 0) break;
      // Twice nothing at all is logind not answering (not running, or no D-Bus), not one session gone after another.
      if (run > 0 && found.size === before) break;
      const failed = rest.findIndex((id) => !found.has(id));
      if (failed < 0) break;
      rest = rest.slice(failed + 1).filter((id) => !found.has(id));
    }
    return found;
  }
}
