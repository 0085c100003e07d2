import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConsoleSessions, ID_FILE, STAT_ARGS, STAT_FILE, WHO_ARGS, WHO_FILE } from '../../../agent/sessions/darwin/console-sessions';
import { LogindSessions } from '../../../agent/sessions/session-directory';
import { QUSER_ARGS, QUSER_FILE, WtsSessions } from '../../../agent/sessions/win32/wts-sessions';
import { RecordedCommands } from '../../../agent/os/recorded-commands';
import { tempDir } from '../../support/cli';
import { HOSTILE_NAME, OVER_LONG_LINE, type SessionRig, type SessionScenario, garbage, sessionDirectoryContract } from './session-directory-contract';
import { allRecordings, answerOf, readRecording } from './session-directory-recordings';

describe('recorded outputs for the session directories', () => {
  it('each says where it came from and whether it was constructed', () => {
    const files = allRecordings();
    expect(files.length).toBeGreaterThanOrEqual(15);
    for (const file of files) expect(() => readRecording(file)).not.toThrow();
  });
});

// ---------------------------------------------------------------------------
// Linux: logind's session files, written into a temporary folder.
// ---------------------------------------------------------------------------

async function linuxRig(scenario: SessionScenario): Promise<SessionRig> {
  const dir = tempDir('logind-contract');
  const amy = readRecording('linux/amy-desktop').output;
  const ben = readRecording('linux/ben-ssh').output;
  const greeter = readRecording('linux/greeter').output;
  const put = (name: string, text: string) => writeFileSync(join(dir, name), text);
  let path = dir;
  switch (scenario) {
    case 'amy-and-ben':
      put('3', amy);
      put('3.ref', '');
      put('7', ben);
      put('c1', greeter);
      mkdirSync(join(dir, 'not-a-session.d'));
      break;
    case 'nobody':
      put('c1', greeter);
      break;
    case 'garbage':
      put('3', garbage());
      put('7', garbage(8192, 42));
      break;
    case 'over-long-line':
      put('3', amy);
      put('7', ben.replace('USER=ben\n', `USER=ben\n${OVER_LONG_LINE}\n`));
      break;
    case 'hostile-user-name':
      put('3', amy);
      put('7', ben);
      put('9', amy.replace('UID=1000', 'UID=1002').replace('USER=amy', `USER=${HOSTILE_NAME}`).replace('SEAT=seat0\n', ''));
      break;
    case 'command-missing':
      path = join(dir, 'no-such-folder');
      break;
  }
  return {
    platform: 'linux',
    directory: new LogindSessions(path),
    amy: { sessionId: '3', uid: 1000, user: 'amy', since: '2026-11-23T08:00:00.000Z' },
    ben: { sessionId: '7', uid: 1001, user: 'ben', since: '2026-11-23T08:30:00.000Z' },
    benSignsInBy: 'ssh',
  };
}

// ---------------------------------------------------------------------------
// Windows: quser's output, recorded.
// ---------------------------------------------------------------------------

/** quser prints local time; the adapter reads it in the test machine's zone, as the agent does on the PC. */
const local = (y: number, mo: number, d: number, h: number, mi: number) => new Date(y, mo - 1, d, h, mi).toISOString();

async function win32Rig(scenario: SessionScenario): Promise<SessionRig> {
  const runner = new RecordedCommands();
  const recorded = readRecording('win32/quser-amy-console-ben-rdp.txt').output;
  const [header, ...rows] = recorded.split('\n');
  const quser = (stdout: string, code = 0) => runner.record(QUSER_FILE, QUSER_ARGS, { stdout, code });
  switch (scenario) {
    case 'amy-and-ben':
      runner.record(QUSER_FILE, QUSER_ARGS, answerOf('win32/quser-amy-console-ben-rdp.txt'));
      break;
    case 'nobody':
      runner.record(QUSER_FILE, QUSER_ARGS, answerOf('win32/quser-nobody.txt'));
      break;
    case 'garbage':
      quser(garbage());
      break;
    case 'over-long-line':
      quser([header, OVER_LONG_LINE, ...rows].join('\n'));
      break;
    case 'hostile-user-name':
      // Constructed: a row in quser's layout whose user name no Windows account can have.
      quser(`${recorded} ${HOSTILE_NAME}  rdp-tcp#1           3  Active          .  23/11/2026 08:45\n`);
      break;
    case 'command-missing':
      runner.record(QUSER_FILE, QUSER_ARGS, { missing: true });
      break;
  }
  return {
    platform: 'win32',
    directory: new WtsSessions({ runner }),
    amy: { sessionId: '1', uid: 1, user: 'amy', since: local(2026, 11, 23, 8, 0) },
    ben: { sessionId: '2', uid: 2, user: 'ben', since: local(2026, 11, 23, 8, 30) },
    benSignsInBy: 'remote-desktop',
  };
}

// ---------------------------------------------------------------------------
// macOS: stat, who and id, recorded.
// ---------------------------------------------------------------------------

/** who prints no year: the rig's clock is an hour after Amy signed in. */
const MAC_NOW = () => new Date(2026, 10, 23, 9, 0);

async function darwinRig(scenario: SessionScenario): Promise<SessionRig> {
  const runner = new RecordedCommands();
  const who = readRecording('darwin/who-amy-console-ben-ssh.txt').output;
  runner.record(ID_FILE, ['-u', 'ben'], answerOf('darwin/id-u-ben.txt'));
  runner.record(ID_FILE, ['-u', 'amy'], { stdout: '501\n' });
  // Constructed: what id prints to stdout for a name it does not know (its message goes to stderr), and its exit code.
  runner.respond((file) => (file === ID_FILE ? { stdout: '', code: 1 } : undefined));
  const stat = (answer: Parameters<RecordedCommands['record']>[2]) => runner.record(STAT_FILE, STAT_ARGS, answer);
  const whoSays = (answer: Parameters<RecordedCommands['record']>[2]) => runner.record(WHO_FILE, WHO_ARGS, answer);
  switch (scenario) {
    case 'amy-and-ben':
      stat(answerOf('darwin/stat-console-amy.txt'));
      whoSays(answerOf('darwin/who-amy-console-ben-ssh.txt'));
      break;
    case 'nobody':
      stat(answerOf('darwin/stat-console-login-window.txt'));
      // Constructed: nobody in utmpx prints nothing.
      whoSays({ stdout: '' });
      break;
    case 'garbage':
      stat({ stdout: garbage() });
      whoSays({ stdout: garbage(8192, 42) });
      break;
    case 'over-long-line':
      stat(answerOf('darwin/stat-console-amy.txt'));
      whoSays({ stdout: `${OVER_LONG_LINE}\n${who}` });
      break;
    case 'hostile-user-name':
      stat(answerOf('darwin/stat-console-amy.txt'));
      // Constructed: an ssh login line in who's layout whose name no account can have.
      whoSays({ stdout: `${who}${HOSTILE_NAME} ttys002  Nov 23 08:45 (198.51.100.7)\n` });
      break;
    case 'command-missing':
      stat({ missing: true });
      whoSays({ missing: true });
      break;
  }
  return {
    platform: 'darwin',
    directory: new ConsoleSessions({ runner, now: MAC_NOW }),
    amy: { sessionId: 'gui-501', uid: 501, user: 'amy', since: local(2026, 11, 23, 8, 0) },
    ben: { sessionId: 'ttys001', uid: 502, user: 'ben', since: local(2026, 11, 23, 8, 30) },
    benSignsInBy: 'ssh',
  };
}

sessionDirectoryContract('Linux (logind files)', linuxRig);
sessionDirectoryContract('Windows (recorded quser)', win32Rig);
sessionDirectoryContract('macOS (recorded stat, who and id)', darwinRig);
