import { descriptorText } from '../../../shared/usb/descriptor-text';
import type { CommandRunner } from '../../os/command-runner';
import { boundedLines } from '../../os/bounded-lines';
import type { SessionDirectory, SignedInUsers, UserSession } from '../session-directory';

/**
 * Who is signed in on Windows: the Remote Desktop Services (WTS) sessions
 * that have a user, as `quser` (the same program as `query user`) lists them.
 *
 * Why `quser` and not CIM: `Win32_LogonSession`/`Win32_LoggedOnUser` list
 * logon sessions (a user can have several per desktop, and services have
 * them too) with no session number, no connected/disconnected state and no
 * window-station name, so they cannot say which desktop is whose. `quser`
 * reads the WTS session list directly, is a small native program (a new
 * PowerShell per poll takes up to seconds, see
 * agent/os/win32/powershell-session.ts), and numbers sessions the way
 * `logoff <n>` takes them.
 *
 * Its output is made for people, and localized: the header, the state
 * ("Active", "Activo", "Actif", "Disc", "Desc") and the date format follow
 * the system's language. So nothing here depends on a word of it:
 * - columns are separated by runs of two or more spaces (the fields are
 *   padded to fixed widths; SAM account names are at most 20 characters, so
 *   the user field always ends in two spaces), and the session number is the
 *   first all-digit field after the user;
 * - connected or not comes from the session name: a session with a user and
 *   a window station ("console", "rdp-tcp#3") is connected; a disconnected
 *   one has none, whatever the state column calls it;
 * - remote means the window station is a remote-desktop one (`rdp-tcp#N`,
 *   Citrix `ica-tcp#N`);
 * - the logon time is read only when its format can be told apart
 *   (parseLogonTime); otherwise `since` is left out.
 * The header line never has a number where the session number goes, so it is
 * skipped like any other line that is not a session.
 *
 * `uid`: Windows has no numeric user id (a user is a SID, a string), and the
 * relative id at the end of a SID is not unique (a local account and a domain
 * account can both be 1001). The interface is shared, so `uid` is the session
 * number: it is what the Windows tray channel is designed around (one pipe per
 * session, `\\.\pipe\invigilator-tray-<session number>`, checked with
 * `GetNamedPipeClientSessionId`), what `logoff` takes, and it is unique among
 * the sessions listed. It is not stable across sign-ins: a later user can get
 * the same number, so anything kept per uid across sign-ins (such as the
 * agreement store) must key Windows users by something else.
 */

export const QUSER_FILE = 'quser.exe';
export const QUSER_ARGS: readonly string[] = [];

/** A school desktop has a handful of sessions; a terminal server a few hundred. Lines beyond are not read. */
const MAX_LINES = 2000;
/** quser's lines are about 80 characters; a longer one is skipped, and the lines after it are still read. */
const MAX_LINE_CHARS = 512;
const MAX_USER_CHARS = 256;
/** logoffSignOut (win32/sign-out.ts) accepts up to five digits for a Windows session. */
const SESSION_NUMBER = /^\d{1,5}$/;
const REMOTE_STATION = /^(?:rdp|ica)-[a-z]{2,8}#\d{1,6}$/i;
const STATION = /^[\x21-\x7e]{1,32}$/;

/** One row of quser output, before it becomes a UserSession. */
export interface QuserRow {
  user: string;
  sessionNumber: number;
  /** The window station, empty for a disconnected session. */
  station: string;
  /** The logon time as printed, in the system's format. */
  logon: string | undefined;
}

/** Splits one quser line into its fields; undefined for the header, blank lines and anything else that is not a session. */
export function parseQuserLine(line: string): QuserRow | undefined {
  const text = line.replace(/\r$/, '');
  if (text.length < 3 || text.length > MAX_LINE_CHARS) return undefined;
  // Column 0 is a space, or '>' for the session quser itself runs in; the user name starts at column 1.
  if (text[0] !== ' ' && text[0] !== '>') return undefined;
  if (/\s/.test(text[1]!)) return undefined;
  const fields = text
    .slice(1)
    .trimEnd()
    .split(/\s{2,}/);
  // user, [station], number, state, idle, logon: the number is field 1 when the station is empty, else field 2.
  const at = SESSION_NUMBER.test(fields[1] ?? '') ? 1 : SESSION_NUMBER.test(fields[2] ?? '') ? 2 : -1;
  if (at < 0) return undefined;
  const sessionNumber = Number(fields[at]);
  const station = at === 2 ? fields[1]! : '';
  if (sessionNumber === 0 || (station !== '' && !STATION.test(station))) return undefined;
  const after = fields.slice(at + 1);
  return { user: fields[0]!, sessionNumber, station, logon: after.length >= 2 ? after[after.length - 1] : undefined };
}

interface LogonParts {
  date: [number, number, number];
  /** Which of the three date numbers is the year, month, day, when the format says so. */
  order: 'ymd' | 'dmy' | 'mdy' | 'ambiguous';
  hour: number;
  minute: number;
  second: number;
}

const TIME = /^(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp])\.?\s?[Mm]\.?)?$/;

function splitLogon(text: string): LogonParts | undefined {
  const m = /^(\S+)\s+(.+)$/.exec(text.trim());
  if (!m) return undefined;
  const t = TIME.exec(m[2]!);
  if (!t) return undefined;
  let hour = Number(t[1]);
  const meridiem = t[4]?.toLowerCase();
  if (meridiem) {
    if (hour < 1 || hour > 12) return undefined;
    hour = (hour % 12) + (meridiem === 'p' ? 12 : 0);
  }
  const time = { hour, minute: Number(t[2]), second: Number(t[3] ?? 0) };
  const d = m[1]!;
  let match: RegExpExecArray | null;
  if ((match = /^(\d{4})[-./](\d{1,2})[-./](\d{1,2})$/.exec(d))) return { date: [Number(match[1]), Number(match[2]), Number(match[3])], order: 'ymd', ...time };
  // Dotted dates are read day-first, as de, ru and pl write them; a month-first dotted format would be misread.
  if ((match = /^(\d{1,2})\.(\d{1,2})\.(\d{4})$/.exec(d))) return { date: [Number(match[1]), Number(match[2]), Number(match[3])], order: 'dmy', ...time };
  if ((match = /^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$/.exec(d))) {
    const a = Number(match[1]);
    const b = Number(match[2]);
    const order = a > 12 && b <= 12 ? 'dmy' : b > 12 && a <= 12 ? 'mdy' : 'ambiguous';
    return { date: [a, b, Number(match[3])], order, ...time };
  }
  return undefined;
}

function localIso(year: number, month: number, day: number, hour: number, minute: number, second: number): string | undefined {
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(year, month - 1, day, hour, minute, second);
  // new Date rolls 31 April over into May; a date that does not exist was not printed by Windows.
  if (date.getFullYear() !== year || date.getMonth() !== month - 1 || date.getDate() !== day) return undefined;
  return date.toISOString();
}

/**
 * A quser logon time as an ISO instant. quser prints local time in the
 * system's short date and time format; `dayFirst` settles day/month order for
 * a date like 3/5/2026 when another row of the same output showed it (every
 * row has the same format), and without it such a date gives undefined rather
 * than a guess.
 */
export function parseLogonTime(text: string | undefined, dayFirst?: boolean): string | undefined {
  const parts = text === undefined ? undefined : splitLogon(text);
  if (!parts) return undefined;
  const [a, b, c] = parts.date;
  const order = parts.order === 'ambiguous' && dayFirst !== undefined ? (dayFirst ? 'dmy' : 'mdy') : parts.order;
  const { hour, minute, second } = parts;
  switch (order) {
    case 'ymd':
      return localIso(a, b, c, hour, minute, second);
    case 'dmy':
      return localIso(c, b, a, hour, minute, second);
    case 'mdy':
      return localIso(c, a, b, hour, minute, second);
    case 'ambiguous':
      return undefined;
  }
}

/** Whether the rows of one output show their dates day-first; undefined when no row settles it. */
function dayFirstOf(rows: readonly QuserRow[]): boolean | undefined {
  for (const row of rows) {
    const parts = row.logon === undefined ? undefined : splitLogon(row.logon);
    if (parts?.order === 'dmy' && /^\d{1,2}[/-]/.test(row.logon!.trim())) return true;
    if (parts?.order === 'mdy') return false;
  }
  return undefined;
}

/** Everything quser printed, as sessions: never throws, and leaves out whatever is not a session row. */
export function parseQuser(stdout: string): UserSession[] {
  const rows: QuserRow[] = [];
  for (const line of boundedLines(stdout, MAX_LINES, MAX_LINE_CHARS + 1)) {
    const row = parseQuserLine(line);
    if (row) rows.push(row);
  }
  const dayFirst = dayFirstOf(rows);
  const seen = new Set<number>();
  const sessions: UserSession[] = [];
  for (const row of rows) {
    const user = descriptorText(row.user, MAX_USER_CHARS);
    if (!user || seen.has(row.sessionNumber)) continue;
    seen.add(row.sessionNumber);
    const since = parseLogonTime(row.logon, dayFirst);
    sessions.push({
      sessionId: String(row.sessionNumber),
      uid: row.sessionNumber,
      user,
      active: row.station !== '',
      remote: REMOTE_STATION.test(row.station),
      // Every WTS session with a user is a desktop: the console, a remote desktop, or one of them disconnected.
      kind: 'graphical',
      ...(since ? { since } : {}),
    });
  }
  return sessions.sort((x, y) => x.uid - y.uid);
}

export interface WtsSessionsLogger {
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

export interface WtsSessionsOptions {
  runner: CommandRunner;
  /** quser answers in milliseconds; a hung one must not hold up the agent's 5 s poll. */
  timeoutMs?: number;
  logger?: WtsSessionsLogger;
}

export const DEFAULT_QUSER_TIMEOUT_MS = 10_000;

/** The Windows SessionDirectory. */
export class WtsSessions implements SessionDirectory, SignedInUsers {
  private readonly runner: CommandRunner;
  private readonly timeoutMs: number;
  private readonly logger: WtsSessionsLogger | undefined;
  private failing = false;

  constructor(options: WtsSessionsOptions) {
    this.runner = options.runner;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_QUSER_TIMEOUT_MS;
    this.logger = options.logger;
  }

  /**
   * The signed-in sessions, or none when quser cannot be run. With nobody
   * signed in quser prints "No User exists for *" to stderr and exits 1, so
   * the exit code alone means nothing; whatever it printed is read.
   */
  async sessions(): Promise<UserSession[]> {
    try {
      const { stdout } = await this.runner.run(QUSER_FILE, [...QUSER_ARGS], this.timeoutMs);
      this.failing = false;
      return parseQuser(stdout);
    } catch (e) {
      // Said once per outage, not every poll.
      if (!this.failing) this.logger?.warn('could not list the signed-in sessions with quser', { error: e instanceof Error ? e.message : String(e) });
      this.failing = true;
      return [];
    }
  }

  /** The desktops at this computer, by session number: the Windows tray channel has one pipe per session. */
  async list(): Promise<number[]> {
    const desktops = (await this.sessions()).filter((s) => s.kind === 'graphical' && !s.remote);
    return [...new Set(desktops.map((s) => s.uid))].sort((a, b) => a - b);
  }
}

export function createWtsSessions(options: WtsSessionsOptions): WtsSessions {
  return new WtsSessions(options);
}
