import { descriptorText } from '../../../shared/usb/descriptor-text';
import type { CommandRunner } from '../../os/command-runner';
import { boundedLines } from '../../os/bounded-lines';
import type { SessionDirectory, SignedInUsers, UserSession } from '../session-directory';

/**
 * Who is signed in on macOS, from two programs every Mac has, run as the
 * agent (root), never through a shell:
 *
 * - `stat -f '%Su %u' /dev/console`: the owner of the console device is the
 *   user whose desktop is on the screen (loginwindow hands it over at login
 *   and takes it back at logout), and root when the login window is showing.
 *   It is what QA1133's SCDynamicStoreCopyConsoleUser reports, without a
 *   framework, and it gives the uid too.
 * - `who`: utmpx, as `login`, `sshd` and loginwindow record it. A line with
 *   a host in parentheses is a network login (ssh): a text session, remote.
 *   A `console` line is a desktop login; it gives the console user's login
 *   time, and a `console` line for someone other than the console owner is a
 *   desktop switched away from with fast user switching (inactive). Lines for
 *   local terminal windows (ttysNNN without a host) are shells inside a
 *   desktop that is already listed, not sign-ins of their own.
 *
 * `who` gives no uid, so for a user seen only there `id -u <name>` is asked,
 * with a name that has passed a strict check; a user whose uid cannot be
 * learned is left out (a session must have one).
 *
 * Session ids: a desktop is `gui-<uid>`, after launchd's `gui/<uid>` domain,
 * which is exactly what `launchctl bootout gui/<uid>` (SessionControl) ends; a
 * network login is its terminal, `ttys003`. The login window (root, or the
 * `loginwindow` name SCDynamicStore uses) and system accounts (`_name`) are
 * nobody signing in.
 */

export const STAT_FILE = '/usr/bin/stat';
export const STAT_ARGS: readonly string[] = ['-f', '%Su %u', '/dev/console'];
export const WHO_FILE = '/usr/bin/who';
export const WHO_ARGS: readonly string[] = [];
export const ID_FILE = '/usr/bin/id';

/** A lab Mac has a handful of logins; a server a few hundred. Lines beyond are not read. */
const MAX_LINES = 2000;
/** A who line is under 100 characters (name, line, date, host of at most 255). */
const MAX_LINE_CHARS = 512;
const MAX_USER_CHARS = 256;
/** Users looked up with `id` per call: a lab Mac has a handful of logins; more is not a real utmpx. */
const MAX_LOOKUPS = 32;
/**
 * Names that may be handed to `id`: what macOS allows for a short name (and
 * what directory services give for network accounts), never starting with a
 * dash, so it cannot be read as an option.
 */
const LOOKUP_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,254}$/;
/** console, ttys000, ttyp1: what loginwindow, sshd and login write as the line. */
const TTY = /^(?:console|tty[A-Za-z0-9]{1,8})$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The user at the screen, from stat's `<name> <uid>`. */
export interface ConsoleOwner {
  user: string;
  uid: number;
}

function isNobody(user: string): boolean {
  return user === 'root' || user === 'loginwindow' || user.startsWith('_');
}

/** The console owner from stat's output; undefined at the login window and for anything that is not `<name> <uid>`. */
export function parseConsoleOwner(stdout: string): ConsoleOwner | undefined {
  const [first] = boundedLines(stdout, 1, MAX_LINE_CHARS + 1);
  const line = first?.replace(/\r$/, '');
  if (line === undefined || line.length > MAX_LINE_CHARS) return undefined;
  const m = /^(.+) (\d{1,10})$/.exec(line.trim());
  if (!m) return undefined;
  const uid = Number(m[2]);
  const user = descriptorText(m[1], MAX_USER_CHARS);
  if (!user || uid === 0 || uid > 0xffffffff || isNobody(m[1]!)) return undefined;
  return { user, uid };
}

/** One utmpx entry as who prints it. */
export interface WhoLine {
  /** The name exactly as printed (checked before it is ever passed to `id`). */
  rawUser: string;
  tty: string;
  host: string | undefined;
  since: string | undefined;
}

/**
 * who's time: `%b %e %R` ("Nov 23 08:00"), or `%e %b %R` under a day-first
 * locale, in local time and without a year: the year is the one that puts the
 * login at most a day after `now`.
 */
export function parseWhoTime(text: string, now: Date): string | undefined {
  const m = /^(?:([A-Z][a-z]{2})\s+(\d{1,2})|(\d{1,2})\s+([A-Z][a-z]{2}))\s+(\d{1,2}):(\d{2})$/.exec(text.trim());
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[1] ?? m[4]!);
  const day = Number(m[2] ?? m[3]);
  const hour = Number(m[5]);
  const minute = Number(m[6]);
  if (month < 0 || day < 1 || day > 31 || hour > 23 || minute > 59) return undefined;
  for (const year of [now.getFullYear(), now.getFullYear() - 1]) {
    const date = new Date(year, month, day, hour, minute);
    if (date.getMonth() !== month || date.getDate() !== day) continue;
    if (date.getTime() <= now.getTime() + 24 * 3600_000) return date.toISOString();
  }
  return undefined;
}

/** who's lines: `name line time [(host)]`, separated by spaces. Never throws; lines that are not entries are left out. */
export function parseWho(stdout: string, now: Date): WhoLine[] {
  const entries: WhoLine[] = [];
  for (const raw of boundedLines(stdout, MAX_LINES, MAX_LINE_CHARS + 1)) {
    const line = raw.replace(/\r$/, '');
    if (line.length > MAX_LINE_CHARS) continue;
    const m = /^(\S{1,256})\s+(\S{1,32})\s+(.*)$/.exec(line);
    if (!m || !TTY.test(m[2]!)) continue;
    const rest = m[3]!;
    const hostMatch = /\(([^()]{0,255})\)\s*$/.exec(rest);
    const host = hostMatch?.[1]?.trim() || undefined;
    const since = parseWhoTime(hostMatch ? rest.slice(0, hostMatch.index) : rest, now);
    entries.push({ rawUser: m[1]!, tty: m[2]!, host, since });
  }
  return entries;
}

/** A host that is a network peer; `:0`-style display names are local. */
function isRemoteHost(host: string | undefined): boolean {
  return host !== undefined && !host.startsWith(':');
}

export interface ConsoleSessionsLogger {
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

export interface ConsoleSessionsOptions {
  runner: CommandRunner;
  /** The clock who's year-less times are read against. */
  now?: () => Date;
  timeoutMs?: number;
  logger?: ConsoleSessionsLogger;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

/** The macOS SessionDirectory. */
export class ConsoleSessions implements SessionDirectory, SignedInUsers {
  private readonly runner: CommandRunner;
  private readonly now: () => Date;
  private readonly timeoutMs: number;
  private readonly logger: ConsoleSessionsLogger | undefined;
  private failing = false;

  constructor(options: ConsoleSessionsOptions) {
    this.runner = options.runner;
    this.now = options.now ?? (() => new Date());
    this.timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.logger = options.logger;
  }

  /** The stdout of a command that ran; undefined when it could not be run. A non-zero exit still prints what it knows. */
  private async output(file: string, args: readonly string[]): Promise<string | undefined> {
    try {
      return (await this.runner.run(file, [...args], this.timeoutMs)).stdout;
    } catch (e) {
      if (!this.failing) this.logger?.warn(`could not run ${file} to list the signed-in sessions`, { error: e instanceof Error ? e.message : String(e) });
      this.failing = true;
      return undefined;
    }
  }

  /** The uid of an account name, from `id -u`; undefined for a name that fails the check or that `id` does not know. */
  private async uidOf(rawUser: string): Promise<number | undefined> {
    if (!LOOKUP_NAME.test(rawUser)) return undefined;
    try {
      const { stdout, code } = await this.runner.run(ID_FILE, ['-u', rawUser], this.timeoutMs);
      const text = stdout.trim();
      return code === 0 && /^\d{1,10}$/.test(text) && Number(text) <= 0xffffffff ? Number(text) : undefined;
    } catch {
      return undefined;
    }
  }

  async sessions(): Promise<UserSession[]> {
    try {
      return await this.read();
    } catch (e) {
      // Every step above already turns failure into "not known"; this is the last guard of a promise the agent polls.
      this.logger?.warn('could not list the signed-in sessions', { error: e instanceof Error ? e.message : String(e) });
      return [];
    }
  }

  private async read(): Promise<UserSession[]> {
    const [statOut, whoOut] = await Promise.all([this.output(STAT_FILE, STAT_ARGS), this.output(WHO_FILE, WHO_ARGS)]);
    if (statOut !== undefined && whoOut !== undefined) this.failing = false;
    const owner = statOut === undefined ? undefined : parseConsoleOwner(statOut);
    const logins = whoOut === undefined ? [] : parseWho(whoOut, this.now());

    const uids = new Map<string, number | undefined>();
    if (owner) for (const l of logins) if (l.tty === 'console' && descriptorText(l.rawUser, MAX_USER_CHARS) === owner.user) uids.set(l.rawUser, owner.uid);
    const uidOf = async (rawUser: string): Promise<number | undefined> => {
      if (uids.has(rawUser)) return uids.get(rawUser);
      const uid = uids.size < MAX_LOOKUPS ? await this.uidOf(rawUser) : undefined;
      uids.set(rawUser, uid);
      return uid;
    };

    const found = new Map<string, UserSession>();
    if (owner) {
      const since = logins.find((l) => l.tty === 'console' && uids.get(l.rawUser) === owner.uid)?.since;
      found.set(`gui-${owner.uid}`, {
        sessionId: `gui-${owner.uid}`,
        uid: owner.uid,
        user: owner.user,
        active: true,
        remote: false,
        kind: 'graphical',
        ...(since ? { since } : {}),
      });
    }
    for (const login of logins) {
      const desktop = login.tty === 'console';
      // A terminal window inside a desktop is not a sign-in; only console lines and network logins are.
      if (!desktop && !isRemoteHost(login.host)) continue;
      if (desktop && isNobody(login.rawUser)) continue;
      const user = descriptorText(login.rawUser, MAX_USER_CHARS);
      if (!user) continue;
      const uid = await uidOf(login.rawUser);
      if (uid === undefined) continue;
      const sessionId = desktop ? `gui-${uid}` : login.tty;
      if (found.has(sessionId)) continue;
      found.set(sessionId, {
        sessionId,
        uid,
        user,
        // A switched-away desktop is not on the screen; a network login is always "in front of" its own terminal.
        active: !desktop,
        remote: !desktop,
        kind: desktop ? 'graphical' : 'text',
        ...(login.since ? { since: login.since } : {}),
      });
    }
    return [...found.values()].sort((a, b) => a.sessionId.localeCompare(b.sessionId));
  }

  /** Users with a desktop at this computer, by uid: one tray socket each. */
  async list(): Promise<number[]> {
    const desktops = (await this.sessions()).filter((s) => s.kind === 'graphical' && !s.remote);
    return [...new Set(desktops.map((s) => s.uid))].sort((a, b) => a - b);
  }
}

export function createConsoleSessions(options: ConsoleSessionsOptions): ConsoleSessions {
  return new ConsoleSessions(options);
}
