import { CommandError, type CommandRunner, createExecFileRunner } from '../../../agent/os/command-runner';
import { type RecordedAnswer, RecordedCommands } from '../../../agent/os/recorded-commands';

/*
 * The runner every OS adapter runs programs through: one contract, passed by
 * the real execFile runner (against real processes) and by the replay fake
 * (against recordings of the same lines), each way of not finishing with its
 * own code and a detail that names the program.
 */

async function failureOf(promise: Promise<unknown>): Promise<{ code: string; detail: string } | undefined> {
  try {
    await promise;
    return undefined;
  } catch (e) {
    if (e instanceof CommandError) return { code: e.code, detail: e.detail };
    throw e;
  }
}

const codeOf = async (promise: Promise<unknown>) => (await failureOf(promise))?.code;

interface RunnerScenarios {
  echoArgs: [string, string[]];
  exitThree: [string, string[]];
  hangs: [string, string[]];
  tooMuch: [string, string[]];
  missing: [string, string[]];
  killed: [string, string[]];
}

const node = process.execPath;
const HOSTILE_ARGS = ['$(id); rm -rf /', 'a b', '*', '`reboot`', '\'"'];
const SCENARIOS: RunnerScenarios = {
  echoArgs: [node, ['-e', 'process.stdout.write(JSON.stringify(process.argv.slice(1)))', '--', ...HOSTILE_ARGS]],
  exitThree: [node, ['-e', 'process.stdout.write("partial"); process.exit(3)']],
  hangs: [node, ['-e', 'setTimeout(() => undefined, 60000)']],
  tooMuch: [node, ['-e', 'process.stdout.write("x".repeat(300000))']],
  missing: ['/nonexistent/invigilator-no-such-tool', []],
  killed: [node, ['-e', 'process.kill(process.pid, "SIGTERM"); setTimeout(() => undefined, 60000)']],
};
const MAX_OUTPUT = 100_000;

function runnerContract(name: string, make: () => CommandRunner): void {
  describe(`the ${name} command runner (contract)`, () => {
    it('passes every argument verbatim, with no shell to interpret it', async () => {
      const [file, args] = SCENARIOS.echoArgs;
      const result = await make().run(file, args);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toEqual(HOSTILE_ARGS);
    });

    it('answers a non-zero exit with its code and output instead of throwing', async () => {
      const [file, args] = SCENARIOS.exitThree;
      expect(await make().run(file, args)).toEqual({ stdout: 'partial', code: 3 });
    });

    it('gives up on a program that does not finish in time, and says so', async () => {
      const [file, args] = SCENARIOS.hangs;
      expect(await failureOf(make().run(file, args, 300))).toEqual({ code: 'INV_ERR_OS_COMMAND_TIMEOUT', detail: `${file}: did not finish within 300 ms` });
    });

    it('refuses output beyond its bound, and says so without quoting it', async () => {
      const [file, args] = SCENARIOS.tooMuch;
      const failure = await failureOf(make().run(file, args));
      expect(failure).toEqual({ code: 'INV_ERR_OS_COMMAND_OVERFLOW', detail: `${file}: printed more than ${MAX_OUTPUT} bytes` });
    });

    it('reports a program that cannot be started as not started', async () => {
      const [file, args] = SCENARIOS.missing;
      expect(await failureOf(make().run(file, args))).toEqual({ code: 'INV_ERR_OS_COMMAND_NOT_STARTED', detail: `${file}: ENOENT` });
    });

    it('reports a program ended by a signal as killed, naming the signal', async () => {
      const [file, args] = SCENARIOS.killed;
      expect(await failureOf(make().run(file, args))).toEqual({ code: 'INV_ERR_OS_COMMAND_KILLED', detail: `${file}: killed by SIGTERM` });
    });
  });
}

runnerContract('real (execFile)', () => createExecFileRunner({ maxOutputBytes: MAX_OUTPUT }));
runnerContract('recorded', () => {
  const answers: [keyof RunnerScenarios, RecordedAnswer][] = [
    ['echoArgs', { stdout: JSON.stringify(HOSTILE_ARGS) }],
    ['exitThree', { stdout: 'partial', code: 3 }],
    ['hangs', { hangs: true }],
    ['tooMuch', { stdout: 'x'.repeat(300000) }],
    ['missing', { missing: true }],
    ['killed', { signal: 'SIGTERM' }],
  ];
  const runner = new RecordedCommands(MAX_OUTPUT);
  for (const [scenario, answer] of answers) runner.record(SCENARIOS[scenario][0], SCENARIOS[scenario][1], answer);
  return runner;
});

describe('RecordedCommands', () => {
  it('fails like the real runner for a command line it has no recording for, and remembers every call', async () => {
    const runner = new RecordedCommands();
    expect(await codeOf(runner.run('/usr/sbin/diskutil', ['list']))).toBe('INV_ERR_OS_COMMAND_NOT_STARTED');
    expect(runner.calls).toEqual([{ file: '/usr/sbin/diskutil', args: ['list'] }]);
  });
});
