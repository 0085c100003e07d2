import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ROOT, eventually, tempDir } from '../support/cli';

/**
 * What the built agent has loaded once it has started (issue 14: the idle
 * agent's memory, `npm run bench -- agent-idle`): a capability that is off
 * is not loaded at all, and no agent loads the schemas only the collector
 * decodes with, nor node-usb on Linux.
 */
async function modulesLoaded(settings: Record<string, unknown>): Promise<string[]> {
  const dir = tempDir('agent-footprint');
  const dataDir = join(dir, 'data');
  const config = join(dir, 'agent.json');
  writeFileSync(
    config,
    JSON.stringify({
      collector: { url: 'ws://127.0.0.1:9/agent', enrollmentToken: 'not-used-here' },
      dataDir,
      logLevel: 'info',
      tray: { socket: join(dir, 'tray.sock') },
      ...settings,
    }),
  );
  // A preload that lists the loaded files when asked: the agent's own code is left as it ships.
  const preload = join(dir, 'list-modules.js');
  const listing = join(dir, 'modules.json');
  writeFileSync(
    preload,
    `process.on('SIGUSR2', () => require('node:fs').writeFileSync(${JSON.stringify(listing)}, JSON.stringify(Object.keys(require.cache))));\n`,
  );
  const child = spawn(process.execPath, ['-r', preload, CLI, 'agent', '--config', config], { cwd: ROOT, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const log = join(dataDir, 'logs', 'agent.log');
    await eventually(() => (existsSync(log) && readFileSync(log, 'utf8').includes('"agent started"') ? true : undefined), 600);
    child.kill('SIGUSR2');
    const loaded = await eventually(() => (existsSync(listing) ? (JSON.parse(readFileSync(listing, 'utf8')) as string[]) : undefined));
    return loaded.map((f) => f.replace(/\\/g, '/'));
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const CAPABILITY_CODE =
  /\/dist\/agent\/(usb|software|aup)\/|\/dist\/agent\/sessions\/(?!idle-reports\.js)|\/dist\/agent\/tray\/user-trays\.js|\/node_modules\/chokidar\//;
const COLLECTOR_SCHEMAS = /\/dist\/shared\/protocol\/(index|events|codec|agent-collector)\.js$/;

describe("the agent's loaded code", () => {
  it('with USB, sessions and software off holds none of their code, nor the schemas only the collector decodes', async () => {
    const loaded = await modulesLoaded({ usb: { control: 'off' }, sessions: { control: 'off' }, software: { control: 'off' } });
    expect(loaded.some((f) => f.endsWith('/dist/agent/agent.js'))).toBe(true);
    expect(loaded.filter((f) => CAPABILITY_CODE.test(f))).toEqual([]);
    expect(loaded.filter((f) => COLLECTOR_SCHEMAS.test(f))).toEqual([]);
    expect(loaded.filter((f) => f.includes('/node_modules/winston/'))).not.toEqual([]);
  }, 60_000);

  it('with every capability observing still leaves out the collector-only schemas, and node-usb on Linux', async () => {
    const loaded = await modulesLoaded({
      usb: { control: 'observe' },
      sessions: { control: 'observe' },
      software: { control: 'observe' },
      tray: { userSockets: 'off' },
    });
    expect(loaded.some((f) => f.endsWith('/dist/agent/usb/usb-guard.js'))).toBe(true);
    expect(loaded.some((f) => f.endsWith('/dist/agent/software/downloads/file-guard.js'))).toBe(true);
    expect(loaded.filter((f) => COLLECTOR_SCHEMAS.test(f))).toEqual([]);
    if (process.platform === 'linux') expect(loaded.filter((f) => /\/node_modules\/usb\//.test(f))).toEqual([]);
  }, 60_000);
});
