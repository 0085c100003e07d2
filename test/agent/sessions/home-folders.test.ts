import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RunningAgent, startAgent } from '../../../agent/agent';
import { OsHomeFolders } from '../../../agent/sessions/home-folders';
import { getentHomes } from '../../../agent/sessions/linux/home-folder';
import { profileHomes } from '../../../agent/sessions/win32/home-folder';
import { usersHomes } from '../../../agent/sessions/darwin/home-folder';
import { LogindSessions, type UserSession } from '../../../agent/sessions/session-directory';
import type { ProcessSource } from '../../../agent/software/programs/process-source';
import { createExecFileRunner } from '../../../agent/os/command-runner';
import { RecordedCommands } from '../../../agent/os/recorded-commands';
import { preset } from '../../../shared/policy/presets';
import { eventually, tempDir } from '../../support/cli';
import { silentLogger, startTestCollector } from '../../support/harness';
import { logindDesktop } from '../../support/logind';
import { agentConfigFor } from '../../support/tray-client';
import { LINUX_SOFTWARE } from '../../support/linux-software';

const session = (uid: number, user: string): UserSession => ({ sessionId: '3', uid, user, active: true, remote: false, kind: 'graphical' });

describe("a signed-in user's home folder", () => {
  it('is found through NSS on Linux (getent, a real process here)', async () => {
    const homes = new OsHomeFolders(getentHomes(createExecFileRunner()));
    expect(await homes.of(session(0, 'root'))).toMatchObject({ uid: 0, home: '/root' });
    expect(await homes.of(session(4_000_000, 'ghost'))).toBeUndefined();
  });

  it('is the profile folder on Windows and macOS, and nothing for a name that could climb out of it', async () => {
    expect(await new OsHomeFolders(profileHomes).of(session(2, 'amy.p'))).toEqual({ uid: 2, home: 'C:\\Users\\amy.p' });
    expect(await new OsHomeFolders(usersHomes).of(session(501, 'amy'))).toEqual({ uid: 501, home: '/Users/amy' });
    expect(await new OsHomeFolders(usersHomes).of(session(501, '../../etc'))).toBeUndefined();
    expect(await new OsHomeFolders(usersHomes).of(session(501, '..'))).toBeUndefined();
    expect(await new OsHomeFolders(profileHomes).of(session(2, '..\\Administrator'))).toBeUndefined();
  });
});

/** Longer than any of these reads may take: each is refused at open, without reading. */
const BOUND_MS = 1_000;

describe("a pupil's ~/.config/user-dirs.dirs, read by the agent as root", () => {
  /** Amy's home in a temporary folder, her user-dirs.dirs made by `put`; getent answers from a recording of its shape. */
  function amysHome(put: (path: string) => void) {
    const home = tempDir('home-amy');
    mkdirSync(join(home, '.config'));
    const path = join(home, '.config', 'user-dirs.dirs');
    put(path);
    // Constructed: getent's passwd line for Amy, the home being this folder.
    const runner = new RecordedCommands().record('getent', ['passwd', '1000'], { stdout: `amy:x:1000:1000:Amy:${home}:/bin/bash\n` });
    const warnings: Array<{ message: string; meta?: Record<string, unknown> }> = [];
    const homes = new OsHomeFolders(getentHomes(runner, { warn: (message, meta) => warnings.push({ message, ...(meta ? { meta } : {}) }) }));
    return { home, path, homes, warnings };
  }

  /** The lookup, or 'stalled' when it has not answered within the bound. */
  async function within<T>(work: Promise<T>): Promise<T | 'stalled'> {
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<'stalled'>((resolve) => (timer = setTimeout(() => resolve('stalled'), BOUND_MS)));
    try {
      return await Promise.race([work, stalled]);
    } finally {
      clearTimeout(timer);
    }
  }

  it('moves her Downloads where the file says', async () => {
    const amy = amysHome((path) => writeFileSync(path, 'XDG_DOWNLOAD_DIR="$HOME/Téléchargements"\nXDG_DESKTOP_DIR="$HOME/Bureau"\n'));
    expect(await amy.homes.of(session(1000, 'amy'))).toEqual({
      uid: 1000,
      home: amy.home,
      downloads: join(amy.home, 'Téléchargements'),
      desktop: join(amy.home, 'Bureau'),
    });
    expect(amy.warnings).toEqual([]);
  });

  it('does not wait on a FIFO there: her home is found at once, with the usual folders, and the refusal is logged with its code', async () => {
    const amy = amysHome((path) => execFileSync('mkfifo', [path]));
    try {
      expect(await within(amy.homes.of(session(1000, 'amy')))).toEqual({ uid: 1000, home: amy.home });
      expect(amy.warnings).toEqual([{ message: expect.any(String), meta: { uid: 1000, code: 'INV_ERR_FILE_UNREADABLE', reason: 'not-a-file' } }]);
    } finally {
      // A reader left waiting on the FIFO (the bug this guards against) is let go, so it holds no thread after the test.
      try {
        closeSync(openSync(amy.path, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // ENXIO: nobody was reading it.
      }
    }
  });

  it('refuses a link to /dev/zero there without reading from it: no memory grows', async () => {
    const amy = amysHome((path) => symlinkSync('/dev/zero', path));
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 5);
    try {
      expect(await within(amy.homes.of(session(1000, 'amy')))).toEqual({ uid: 1000, home: amy.home });
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    expect(peak - before).toBeLessThan(4 * 1024 * 1024);
    expect(amy.warnings).toEqual([{ message: expect.any(String), meta: { uid: 1000, code: 'INV_ERR_FILE_UNREADABLE', reason: 'not-a-file', errno: 'ELOOP' } }]);
  });

  it('refuses a 100 KiB file whole (never half-read), with INV_ERR_INPUT_TOO_LARGE in the log', async () => {
    const amy = amysHome((path) => writeFileSync(path, `XDG_DOWNLOAD_DIR="$HOME/Téléchargements"\n${'#'.repeat(100 * 1024)}\n`));
    expect(await amy.homes.of(session(1000, 'amy'))).toEqual({ uid: 1000, home: amy.home });
    expect(amy.warnings).toEqual([{ message: expect.any(String), meta: { uid: 1000, code: 'INV_ERR_INPUT_TOO_LARGE', reason: 'too-large' } }]);
  });
});

describe("the session poll, with a FIFO at a signed-in pupil's user-dirs.dirs", () => {
  it('finishes every tick: the agent starts, and a later sign-in is still seen and reported', async () => {
    // Arrange: Amy signed in, her user-dirs.dirs a FIFO; the software capability asks for her home on every tick.
    const c = await startTestCollector({ policy: preset('basildon-primary')! });
    const dataDir = tempDir('fifo-poll');
    const logind = tempDir('fifo-poll-logind');
    logindDesktop(logind, '3', 1000, 'amy');
    const home = tempDir('home-amy');
    mkdirSync(join(home, '.config'));
    const fifo = join(home, '.config', 'user-dirs.dirs');
    execFileSync('mkfifo', [fifo]);
    // Constructed: getent's passwd lines, the homes being these folders.
    const runner = new RecordedCommands()
      .record('getent', ['passwd', '1000'], { stdout: `amy:x:1000:1000:Amy:${home}:/bin/bash\n` })
      .record('getent', ['passwd', '1001'], { stdout: `ben:x:1001:1001:Ben:${tempDir('home-ben')}:/bin/bash\n` });
    const processes: ProcessSource = {
      platform: 'linux',
      start: async () => undefined,
      stop: async () => undefined,
      isSame: async () => false,
      running: () => [],
    };
    const starting = startAgent({
      config: await agentConfigFor(c, dataDir, 'basildon-primary'),
      fallbackPolicy: preset('basildon-primary')!,
      logger: silentLogger(),
      platform: 'linux',
      version: '0.0.0-test',
      linkTuning: { backoffBaseMs: 50, backoffCapMs: 200 },
      sessions: { directory: new LogindSessions(logind), control: { signOut: async () => undefined } },
      software: { control: 'observe', processes, ...LINUX_SOFTWARE, homes: new OsHomeFolders(getentHomes(runner)), folders: () => [] },
      sessionPollMs: 100,
    });
    let agent: RunningAgent | 'stalled' | undefined;
    try {
      // Act: the start waits for the first tick.
      let timer: NodeJS.Timeout | undefined;
      agent = await Promise.race([starting, new Promise<'stalled'>((resolve) => (timer = setTimeout(() => resolve('stalled'), 5_000)))]);
      clearTimeout(timer);
      expect(agent).not.toBe('stalled');

      // Assert: the ticks go on; Ben signing in later is recorded, and Amy's session is not in error.
      logindDesktop(logind, '5', 1001, 'ben');
      const started = await eventually(async () => {
        const { events } = await c.store.queryEvents({ type: 'session.started', limit: 10 });
        return events.length >= 2 ? events : undefined;
      });
      expect(started.map((e) => (e.data as { user?: string }).user).sort()).toEqual(['amy', 'ben']);
    } finally {
      // Under the bug, the first tick waits on the FIFO for ever: a writer lets it go so the agent can be stopped.
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // ENXIO: nobody was reading it.
      }
      await (agent === undefined || agent === 'stalled' ? starting : Promise.resolve(agent)).then((a) => a.stop('test over'));
      await c.close();
    }
  });
});
