import type { Logger } from '../../node-common/logging';
import { TrayServer, type TrayServerOptions } from './tray-server';

/**
 * The root-only tray socket or pipe (administrators' tools; the Windows and
 * macOS tray), open and listening; undefined when it could not be opened.
 */
export async function openRootTray(options: Pick<TrayServerOptions, 'path' | 'onAnswer' | 'onReport'> & { logger: Logger }): Promise<TrayServer | undefined> {
  const tray = new TrayServer(options);
  try {
    await tray.listen();
    return tray;
  } catch (e) {
    // Enforcement must not depend on the channel that explains it (a path too long for a socket, say).
    options.logger
      .child({ component: 'agent' })
      .error('the tray channel could not be opened; notices are only logged', { path: options.path, error: String(e) });
    return undefined;
  }
}
