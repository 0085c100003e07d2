/**
 * The composition root of the tray's main process: the only file that touches
 * the real Electron. Everything it starts is written against `ElectronApi` and
 * tested with a stand-in; this file is not unit-tested.
 *
 * Compiled to dist/tray-ui/main/index.js; the windows are at
 * dist/tray-ui/renderer/<name>/index.html, the preload at
 * dist/tray-ui/preload/preload.js, the icons at dist/tray-ui/icons/<state>.png.
 */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { AgentClient } from './agent-client';
import type { ElectronApi } from './electron-api';
import { parseTasklistSession, signOutCommand, traySessionId, traySocketPath } from './session';
import { TrayApp } from './tray-app';

const TRAY_VERSION = '0.1.0';

function windowsSessionId(): number | undefined {
  if (process.platform !== 'win32') return undefined;
  try {
    const output = execFileSync('tasklist.exe', ['/FI', `PID eq ${process.pid}`, '/FO', 'CSV', '/NH'], {
      encoding: 'utf8',
      windowsHide: true,
      timeout: 10_000,
    });
    return parseTasklistSession(output);
  } catch {
    return undefined;
  }
}

function main(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const electron = require('electron') as ElectronApi;
  const facts = { platform: process.platform, env: process.env, uid: process.getuid?.(), windowsSessionId: windowsSessionId() };
  const log = (message: string, fields?: Record<string, unknown>) => console.warn(`[invigilator-tray] ${message}`, fields ?? '');
  const agent = new AgentClient({
    path: traySocketPath(facts),
    trayVersion: TRAY_VERSION,
    ...(traySessionId(facts) ? { sessionId: traySessionId(facts)! } : {}),
    onDropped: (code) => log('dropped a line from the agent', { code }),
  });
  const app = new TrayApp({
    electron,
    agent,
    rendererDir: join(__dirname, '..', 'renderer'),
    preloadPath: join(__dirname, '..', 'preload', 'preload.js'),
    iconDir: join(__dirname, '..', 'icons'),
    signOut: () => {
      const { file, args } = signOutCommand(facts);
      execFile(file, args, { windowsHide: true }, (error) => {
        if (error) log('could not sign out', { error: error.message });
      });
    },
    log,
  });
  app.start().catch((error: unknown) => {
    log('the tray did not start', { error: String(error) });
    electron.app.quit();
  });
}

main();
