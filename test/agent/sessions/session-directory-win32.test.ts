import type { UserSession } from '../../../agent/sessions/session-directory';
import { QUSER_ARGS, QUSER_FILE, WtsSessions, parseLogonTime, parseQuser, parseQuserLine } from '../../../agent/sessions/win32/wts-sessions';
import { RecordedCommands } from '../../../agent/os/recorded-commands';
import { answerOf, readRecording } from './session-directory-recordings';

/** quser prints local time; the adapter reads it in this machine's zone, as the agent does on the PC. */
const local = (y: number, mo: number, d: number, h: number, mi: number) => new Date(y, mo - 1, d, h, mi).toISOString();
const quser = (file: string) => readRecording(`win32/${file}`).output;

describe('quser on Windows in other languages and layouts (published captures)', () => {
  it('reads a Spanish console session and a disconnected one without knowing a word of Spanish', () => {
    expect(parseQuser(quser('quser-es-console-and-disconnected.txt'))).toEqual<UserSession[]>([
      { sessionId: '1', uid: 1, user: 'mabe-b3', active: true, remote: false, kind: 'graphical', since: local(2018, 7, 25, 7, 46) },
      { sessionId: '2', uid: 2, user: 'otro00', active: false, remote: false, kind: 'graphical', since: local(2018, 7, 25, 10, 51) },
    ]);
  });

  it('reads an English remote-desktop session with a day-first dotted date', () => {
    expect(parseQuser(quser('quser-en-rdp.txt'))).toEqual<UserSession[]>([
      { sessionId: '1', uid: 1, user: 'administrator', active: true, remote: true, kind: 'graphical', since: local(2022, 8, 24, 17, 42) },
    ]);
  });

  it('reads a French remote-desktop session whose state is "Actif"', () => {
    expect(parseQuser(quser('quser-fr-rdp.txt'))).toEqual<UserSession[]>([
      { sessionId: '2', uid: 2, user: 'jsboi', active: true, remote: true, kind: 'graphical', since: local(2026, 9, 20, 12, 27) },
    ]);
  });

  it('leaves the start time out when the date could be read either way (12/02/2023)', () => {
    expect(parseQuser(quser('quser-fr-console-ambiguous-date.txt'))).toEqual<UserSession[]>([
      { sessionId: '1', uid: 1, user: 'olivier', active: true, remote: false, kind: 'graphical' },
    ]);
  });

  it('reads shifted columns, and settles 8/9/2017 as month-first from the other rows of the same output', () => {
    expect(parseQuser(quser('quser-en-four-sessions-redacted.txt'))).toEqual<UserSession[]>([
      { sessionId: '2', uid: 2, user: 'admin.xxxxxxxx', active: false, remote: false, kind: 'graphical', since: local(2017, 7, 20, 13, 19) },
      { sessionId: '3', uid: 3, user: 'admin.xxxxx', active: true, remote: true, kind: 'graphical', since: local(2017, 7, 21, 5, 35) },
      { sessionId: '4', uid: 4, user: 'xxxxxxxx', active: false, remote: false, kind: 'graphical', since: local(2017, 7, 21, 9, 25) },
      { sessionId: '5', uid: 5, user: 'vertigoray', active: true, remote: false, kind: 'graphical', since: local(2017, 8, 9, 16, 40) },
    ]);
  });

  it('reads Windows line endings and a name the OEM code page garbled', () => {
    const crlf = quser('quser-amy-console-ben-rdp.txt').replace(/\n/g, '\r\n').replace(' amy   ', ' am\ufffdy ');
    expect(parseQuser(crlf).map((s) => [s.sessionId, s.user, s.remote])).toEqual([
      ['1', 'am\ufffdy', false],
      ['2', 'ben', true],
    ]);
  });
});

describe('quser lines that are not sessions', () => {
  const row = (user: string, station: string, id: string) => ` ${user.padEnd(22)}${station.padEnd(17)}${id.padStart(4)}  Active      none   23/11/2026 08:00`;

  it('skips headers, blank lines, session 0, numbers too long to be a session, and lines not in the layout', () => {
    expect(parseQuserLine(' USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME')).toBeUndefined();
    expect(parseQuserLine('')).toBeUndefined();
    expect(parseQuserLine(row('services', '', '0'))).toBeUndefined();
    expect(parseQuserLine(row('amy', 'console', '123456'))).toBeUndefined();
    expect(parseQuserLine(`x${row('amy', 'console', '1').slice(1)}`)).toBeUndefined();
    expect(parseQuserLine(`  ${row('amy', 'console', '1').slice(1)}`)).toBeUndefined();
    expect(parseQuserLine(row('amy', 'con\u0000sole', '1'))).toBeUndefined();
    expect(parseQuserLine(row('amy', 'console', '1'))).toEqual({ user: 'amy', sessionNumber: 1, station: 'console', logon: '23/11/2026 08:00' });
  });

  it('keeps the first of two rows with the same session number', () => {
    expect(parseQuser([row('amy', 'console', '1'), row('mallory', 'console', '1')].join('\n')).map((s) => s.user)).toEqual(['amy']);
  });

  it('keeps a hostile name as plain text: no control or direction characters, markup left as characters, at most 256 of them', () => {
    const [scripted, capped] = parseQuser(
      [
        ` <script>x</script>\u001b[31m\u0007\u202eevil  rdp-tcp#1  3  Active  .  23/11/2026 08:45`,
        ` ${'n'.repeat(300)}  console  4  Active  .  23/11/2026 08:45`,
      ].join('\n'),
    );
    expect(scripted).toMatchObject({ sessionId: '3', user: '<script>x</script> [31m evil', remote: true });
    expect(scripted?.user).not.toMatch(/[\p{Cc}\p{Cf}]/u);
    expect(capped).toMatchObject({ sessionId: '4', user: 'n'.repeat(256) });
  });

  it('skips a line longer than any quser row and reads the rows after it', () => {
    const long = ` ${'n'.repeat(600)}  console  4  Active  .  23/11/2026 08:45`;
    expect(parseQuser(`${long}\n${row('amy', 'console', '1')}`).map((s) => s.sessionId)).toEqual(['1']);
  });
});

describe('quser logon times', () => {
  it('reads the formats that say which number is the day', () => {
    expect(parseLogonTime('2026-11-23 08:00')).toBe(local(2026, 11, 23, 8, 0));
    expect(parseLogonTime('23.11.2026 08:00')).toBe(local(2026, 11, 23, 8, 0));
    expect(parseLogonTime('23/11/2026 08:00')).toBe(local(2026, 11, 23, 8, 0));
    expect(parseLogonTime('11/23/2026 8:00 AM')).toBe(local(2026, 11, 23, 8, 0));
    expect(parseLogonTime('11/23/2026 12:05 AM')).toBe(local(2026, 11, 23, 0, 5));
    expect(parseLogonTime('11/23/2026 12:05 PM')).toBe(local(2026, 11, 23, 12, 5));
    expect(parseLogonTime('23/11/2026 8:05 p. m.')).toBe(local(2026, 11, 23, 20, 5));
  });

  it('gives nothing for what it cannot be sure of', () => {
    expect(parseLogonTime('3/5/2026 08:00')).toBeUndefined();
    expect(parseLogonTime('3/5/2026 08:00', true)).toBe(local(2026, 5, 3, 8, 0));
    expect(parseLogonTime('3/5/2026 08:00', false)).toBe(local(2026, 3, 5, 8, 0));
    expect(parseLogonTime('31/04/2026 08:00')).toBeUndefined();
    expect(parseLogonTime('23/11/26 08:00')).toBeUndefined();
    expect(parseLogonTime('2026/11/23 午前 8:00')).toBeUndefined();
    expect(parseLogonTime('23/11/2026 25:00')).toBeUndefined();
    expect(parseLogonTime('23/11/2026 13:00 PM')).toBeUndefined();
    expect(parseLogonTime(undefined)).toBeUndefined();
  });
});

describe('the Windows session directory', () => {
  it('runs quser with no arguments and lists the desktops at the PC by session number', async () => {
    const runner = new RecordedCommands().record(QUSER_FILE, QUSER_ARGS, answerOf('win32/quser-amy-console-ben-rdp.txt'));
    const directory = new WtsSessions({ runner });
    expect(await directory.list()).toEqual([1]);
    expect(runner.calls).toEqual([{ file: 'quser.exe', args: [] }]);
  });

  it('reads nobody from an empty answer with a non-zero exit', async () => {
    const runner = new RecordedCommands().record(QUSER_FILE, QUSER_ARGS, answerOf('win32/quser-nobody.txt'));
    expect(await new WtsSessions({ runner }).sessions()).toEqual([]);
  });

  it('says once that quser cannot be run, not at every poll, and again after it has worked in between', async () => {
    let answer: { missing: true } | { hangs: true } | { stdout: string } = { missing: true };
    const runner = new RecordedCommands().respond(() => answer);
    const warnings: string[] = [];
    const directory = new WtsSessions({ runner, logger: { warn: (m) => warnings.push(m) } });
    expect(await directory.sessions()).toEqual([]);
    answer = { hangs: true };
    expect(await directory.sessions()).toEqual([]);
    expect(warnings).toHaveLength(1);
    answer = { stdout: quser('quser-amy-console-ben-rdp.txt') };
    expect(await directory.sessions()).toHaveLength(2);
    answer = { missing: true };
    await directory.sessions();
    expect(warnings).toHaveLength(2);
  });
});
