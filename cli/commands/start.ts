import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_COLLECTOR_PORT } from '../../collector/config';
import { parse } from '../args';
import { isRunning, launchingNpmPid } from '../lifecycle';
import { EXIT, type Io } from '../output';

export const START_HELP = `Usage: invigilator start [--data-dir DIR] [--port N] [--policy NAME|FILE]

For trying Invigilator on one machine (this is what \`npm start\` runs):
starts a collector on embedded SQLite under DIR (default ./data) and this
machine's agent, enrolled with it, as two processes. Prints the collector's
address and where the admin API token is. Ctrl-C or SIGTERM stops both (exit 0).

The port also comes from INVIGILATOR_PORT (default ${DEFAULT_COLLECTOR_PORT}).`;

interface Ready {
  type: 'collector.ready';
  url: string;
  port: number;
  enrollmentTokenPath: string;
  adminTokenPath: string | null;
}

/**
 * Two processes, as in a real deployment, so that stopping, crashing and
 * restarting behave here as they will at a school.
 */
export async function startCommand(argv: string[], io: Io, cliPath: string): Promise<number> {
  const { values } = parse(argv, { 'data-dir': { type: 'string' }, port: { type: 'string' }, policy: { type: 'string' } });
  if (values.help) {
    io.out(START_HELP);
    return EXIT.OK;
  }
  const dataDir = resolve(values['data-dir'] ?? 'data');
  const port = values.port ?? process.env.INVIGILATOR_PORT ?? String(DEFAULT_COLLECTOR_PORT);
  const policyArgs = values.policy ? ['--policy', values.policy] : [];

  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = async (signal: NodeJS.Signals) => {
    stopping = true;
    // The agent first, so its last events reach the collector before the collector goes.
    for (const child of [...children].reverse()) await stopChild(child, signal);
  };

  const result = await new Promise<number>((resolveExit) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      io.out(`\nStopping (${signal})...`);
      void stopAll('SIGTERM').then(() => resolveExit(EXIT.OK));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const npm = launchingNpmPid();
    if (npm !== undefined) {
      const watch = setInterval(() => {
        if (isRunning(npm)) return;
        clearInterval(watch);
        onSignal('SIGTERM');
      }, 1000);
      watch.unref();
    }

    const onUnexpectedExit = (name: string) => (code: number | null, signal: NodeJS.Signals | null) => {
      if (stopping) return;
      io.err(`The ${name} stopped unexpectedly (${signal ?? `exit ${code}`}); stopping the rest.`);
      void stopAll('SIGTERM').then(() => resolveExit(EXIT.FAILED));
    };

    // This machine's own agent is approved at once: the token is written to this machine's data folder, readable by its owner only.
    const collector = fork(cliPath, ['collector', '--db', `sqlite:${join(dataDir, 'collector.db')}`, '--port', port, '--data-dir', dataDir, ...policyArgs], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, INVIGILATOR_ENROLLMENT_APPROVAL: 'automatic' },
    });
    children.push(collector);
    collector.once('exit', onUnexpectedExit('collector'));
    collector.once('message', (message: Ready) => {
      if (stopping) return;
      const token = readFileSync(message.enrollmentTokenPath, 'utf8').trim();
      const agentUrl = `ws://127.0.0.1:${message.port}/agent`;
      // The agent takes its policy from the collector's push, so it needs no --policy of its own. It only
      // observes USB devices and sessions: this is someone's own machine, whose keyboard must keep working
      // and whose owner must not be signed out at 16:00 or lose a download to the quarantine.
      const agentArgs = [
        'agent',
        '--collector',
        agentUrl,
        '--data-dir',
        join(dataDir, 'agent'),
        '--usb-control',
        'observe',
        '--sessions-control',
        'observe',
        '--software-control',
        'observe',
      ];
      const agent = fork(cliPath, agentArgs, {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, INVIGILATOR_ENROLLMENT_TOKEN: token },
      });
      children.push(agent);
      agent.once('exit', onUnexpectedExit('agent'));
      io.out(
        `\nInvigilator is running.\n  Collector: ${message.url}\n  Admin API token: ${message.adminTokenPath ?? '(made by another collector)'}\n  Try: curl -H "Authorization: Bearer $(cat ${message.adminTokenPath ?? 'data/admin-token'})" ${message.url}/api/devices\n  Stop with Ctrl-C.\n`,
      );
    });
  });
  return result;
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolveStop();
    });
    child.kill(signal);
  });
}
