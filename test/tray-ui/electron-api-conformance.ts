/**
 * Compile-time check, run by `npm run typecheck`: the real Electron 45 module
 * (its own type definitions, from the `electron` package) must be assignable
 * to `ElectronApi`, the interface the tray's main process and its stand-in
 * are written against. If Electron renames or reshapes anything the tray
 * uses, this file stops compiling and `npm test` fails.
 */
import type * as Electron from 'electron';
import type { ElectronApi } from '../../tray-ui/main/electron-api';

export function realElectronConforms(real: typeof Electron): ElectronApi {
  return real;
}
