import {
  ConsoleSessions,
  ID_FILE,
  STAT_ARGS,
  STAT_FILE,
  WHO_ARGS,
  WHO_FILE,
  parseConsoleOwner,
  parseWho,
  parseWhoTime,
} from '../../../agent/sessions/darwin/console-sessions';
import type { UserSession } from '../../../agent/sessions/session-directory';
import { type RecordedAnswer, RecordedCommands } from '../../../agent/os/recorded-commands';
import { answerOf, readRecording } from './session-directory-recordings';

/** who prints local time without a year; the adapter reads it in this machine's zone against its clock. */
const local = (y: number, mo: number, d: number, h: number, mi: number) => new Date(y, mo - 1, d, h, mi).toISOString();
const who = (file: string) => readRecording(`darwin/${file}`).output;

/** A Mac behind recorded outputs: stat and who as given, `id -u` for the names in `uids`, and "no such user" for any other. */
function mac(stat: RecordedAnswer, whoAnswer: RecordedAnswer, uids: Record<string, number> = {}) {
  const runner = new RecordedCommands().record(STAT_FILE, STAT_ARGS, stat).record(WHO_FILE, WHO_ARGS, whoAnswer);
  runner.respond((file, args) => {
    if (file !== ID_FILE) return undefined;
    const uid = uids[args[1] ?? ''];
    // Constructed: id prints the number, or (for a name it does not know) nothing on stdout and exits 1.
    return uid === undefined ? { stdout: '', code: 1 } : { stdout: `${uid}\n` };
  });
  return runner;
}

describe('the console owner, from stat', () => {
  it('reads name and uid, and nobody at the login window, for a system account, or for anything else', () => {
    expect(parseConsoleOwner(readRecording('darwin/stat-console-amy.txt').output)).toEqual({ user: 'amy', uid: 501 });
    expect(parseConsoleOwner(readRecording('darwin/stat-console-login-window.txt').output)).toBeUndefined();
    expect(parseConsoleOwner('loginwindow 88\n')).toBeUndefined();
    expect(parseConsoleOwner('_mbsetupuser 248\n')).toBeUndefined();
    expect(parseConsoleOwner('amy\n')).toBeUndefined();
    expect(parseConsoleOwner('amy 99999999999\n')).toBeUndefined();
    expect(parseConsoleOwner(`${'a'.repeat(600)} 501\n`)).toBeUndefined();
    expect(parseConsoleOwner('')).toBeUndefined();
  });

  it('keeps a hostile name as plain text', () => {
    const owner = parseConsoleOwner('<b>amy</b>\u001b]0;pwned\u0007\u202e 501\n');
    expect(owner?.uid).toBe(501);
    expect(owner?.user).toContain('<b>amy</b>');
    expect(owner?.user).not.toMatch(/[\p{Cc}\p{Cf}]/u);
  });
});

describe('logins, from who (published transcripts)', () => {
  it('reads a desktop and the Terminal tabs in it, with the year taken from the clock', () => {
    // The transcript ran `date` just before: Mon Dec  9 22:39:22 2019.
    const lines = parseWho(who('who-console-and-terminals.txt'), new Date(2019, 11, 9, 22, 39, 22));
    expect(lines.map((l) => [l.rawUser, l.tty, l.host, l.since])).toEqual([
      ['faner', 'console', undefined, local(2019, 11, 29, 7, 0)],
      ['faner', 'ttys000', undefined, local(2019, 12, 7, 7, 48)],
      ['faner', 'ttys002', undefined, local(2019, 12, 7, 7, 48)],
      ['faner', 'ttys004', undefined, local(2019, 12, 8, 7, 2)],
      ['faner', 'ttys006', undefined, local(2019, 12, 9, 22, 39)],
    ]);
  });

  it('reads a name longer than the column', () => {
    const lines = parseWho(who('who-long-name.txt'), new Date(2019, 11, 18));
    expect(lines.map((l) => [l.rawUser, l.tty])).toEqual([
      ['enter3017sky', 'console'],
      ['enter3017sky', 'ttys001'],
      ['enter3017sky', 'ttys002'],
    ]);
  });

  it('reads the remote host, day-first times, and a login from last December seen in January', () => {
    const [ssh, dayFirst] = parseWho('ben      ttys001  Nov 23 08:30 (192.0.2.10)\nben      ttys002  23 Nov 08:31 \n', new Date(2026, 10, 23, 9, 0));
    expect(ssh).toEqual({ rawUser: 'ben', tty: 'ttys001', host: '192.0.2.10', since: local(2026, 11, 23, 8, 30) });
    expect(dayFirst?.since).toBe(local(2026, 11, 23, 8, 31));
    expect(parseWhoTime('Dec 31 23:00', new Date(2027, 0, 1, 8, 0))).toBe(local(2026, 12, 31, 23, 0));
    expect(parseWhoTime('Feb 30 08:00', new Date(2026, 10, 23))).toBeUndefined();
    expect(parseWhoTime('nov. 23 08:00', new Date(2026, 10, 23))).toBeUndefined();
  });

  it('skips what is not a login line', () => {
    expect(parseWho('reboot   ~        Nov 27 07:08\nsome text\n\namy      /dev/x   Nov 23 08:00\n', new Date(2026, 10, 23))).toEqual([]);
  });
});

describe('the macOS session directory', () => {
  const now = () => new Date(2026, 10, 23, 9, 0);

  it('runs stat, who, and id only for a network login, with exactly these arguments', async () => {
    const runner = mac(answerOf('darwin/stat-console-amy.txt'), answerOf('darwin/who-amy-console-ben-ssh.txt'), { ben: 502 });
    const directory = new ConsoleSessions({ runner, now });
    expect(await directory.list()).toEqual([501]);
    expect(runner.calls).toEqual([
      { file: '/usr/bin/stat', args: ['-f', '%Su %u', '/dev/console'] },
      { file: '/usr/bin/who', args: [] },
      { file: '/usr/bin/id', args: ['-u', 'ben'] },
    ]);
  });

  it('reads the published transcript as one desktop; its Terminal tabs are not sign-ins', async () => {
    // Constructed: the transcript shows no stat output; this is what stat would print for its user.
    const runner = mac({ stdout: 'faner 501\n' }, answerOf('darwin/who-console-and-terminals.txt'));
    const directory = new ConsoleSessions({ runner, now: () => new Date(2019, 11, 9, 22, 39, 22) });
    expect(await directory.sessions()).toEqual<UserSession[]>([
      { sessionId: 'gui-501', uid: 501, user: 'faner', active: true, remote: false, kind: 'graphical', since: local(2019, 11, 29, 7, 0) },
    ]);
  });

  it('lists a desktop switched away from (fast user switching) as inactive, beside the one on the screen', async () => {
    const runner = mac({ stdout: 'ben 502\n' }, { stdout: 'amy      console  Nov 23 08:00 \nben      console  Nov 23 08:40 \n' }, { amy: 501 });
    expect(await new ConsoleSessions({ runner, now }).sessions()).toEqual<UserSession[]>([
      { sessionId: 'gui-501', uid: 501, user: 'amy', active: false, remote: false, kind: 'graphical', since: local(2026, 11, 23, 8, 0) },
      { sessionId: 'gui-502', uid: 502, user: 'ben', active: true, remote: false, kind: 'graphical', since: local(2026, 11, 23, 8, 40) },
    ]);
  });

  it('still lists network logins when stat cannot be run, and leaves out a login whose uid cannot be learned', async () => {
    const runner = mac({ missing: true }, { stdout: `${who('who-amy-console-ben-ssh.txt')}carol    ttys002  Nov 23 08:50 (198.51.100.7)\n` }, { ben: 502 });
    expect(await new ConsoleSessions({ runner, now }).sessions()).toEqual<UserSession[]>([
      { sessionId: 'ttys001', uid: 502, user: 'ben', active: true, remote: true, kind: 'text', since: local(2026, 11, 23, 8, 30) },
    ]);
  });

  it('never passes a name to id that could be read as an option or that carries control characters', async () => {
    const hostile = ['-rf', '--help', 'a\u001b[2Jb', '<script>', 'x'.repeat(300)];
    const lines = hostile.map((name, i) => `${name} ttys00${i}  Nov 23 08:45 (198.51.100.7)`).join('\n');
    const runner = mac(answerOf('darwin/stat-console-amy.txt'), { stdout: `${lines}\nloginwindow console  Nov 23 08:00\nroot     console  Nov 23 08:00\n` });
    const sessions = await new ConsoleSessions({ runner, now }).sessions();
    expect(sessions.map((s) => s.sessionId)).toEqual(['gui-501']);
    expect(runner.calls.filter((c) => c.file === ID_FILE)).toEqual([]);
  });

  it('looks up each user once per reading, and at most 32 of them', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => `user${i}    ttys${String(i).padStart(3, '0')}  Nov 23 08:45 (198.51.100.7)`);
    const runner = mac(answerOf('darwin/stat-console-amy.txt'), { stdout: [...lines, lines[0]!.replace('ttys000', 'ttys100')].join('\n') });
    await new ConsoleSessions({ runner, now }).sessions();
    expect(runner.calls.filter((c) => c.file === ID_FILE)).toHaveLength(32);
  });

  it('says once that it cannot read the sessions, not at every poll', async () => {
    const runner = new RecordedCommands().respond(() => ({ missing: true }));
    const warnings: string[] = [];
    const directory = new ConsoleSessions({ runner, now, logger: { warn: (m) => warnings.push(m) } });
    expect(await directory.sessions()).toEqual([]);
    expect(await directory.sessions()).toEqual([]);
    expect(warnings).toHaveLength(1);
  });
});
