/**
 * The preload of every tray window: the few named functions a page may call
 * (`window.invigilator`), each sending on one allow-listed channel. Nothing
 * else of Electron reaches the page, and no IPC event object is passed on.
 *
 * A sandboxed preload is loaded as one file whose `require` knows only
 * `electron` and a few Node built-ins, so this file imports nothing at run
 * time (type imports vanish when compiled) and keeps its own copy of the
 * channel names; test/tray-ui/main-process.test.ts checks the copy matches
 * `tray-ui/main/channels.ts`.
 */

/** Must equal CHANNELS in tray-ui/main/channels.ts. */
export const PRELOAD_CHANNELS = {
  show: 'invigilator:show',
  answer: 'invigilator:answer',
  report: 'invigilator:report',
  close: 'invigilator:close',
  openPolicy: 'invigilator:open-policy',
} as const;

export type ReportKind = 'broken' | 'virus' | 'upsetting';

/** What a page sees as `window.invigilator`: the contract with the renderer windows. */
export interface InvigilatorApi {
  /** Called with what the window is to show; called at once with the latest if that came before the page asked. */
  onShow(callback: (payload: unknown) => void): void;
  answer(noticeId: string, action: string, text?: string, target?: string): void;
  report(kind: ReportKind, text: string): void;
  close(): void;
  openPolicy(): void;
}

/** The parts of Electron's `contextBridge` and `ipcRenderer` the preload uses. */
export interface PreloadElectron {
  contextBridge: { exposeInMainWorld(apiKey: string, api: unknown): void };
  ipcRenderer: {
    send(channel: string, ...args: unknown[]): void;
    on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): void;
  };
}

const REPORT_KINDS: readonly string[] = ['broken', 'virus', 'upsetting'];
/** Generous caps; the main process validates every message against the protocol anyway. */
const MAX_ID = 128;
const MAX_TEXT = 4000;

const isText = (value: unknown, max: number): value is string => typeof value === 'string' && value.length <= max;

/** Builds `window.invigilator` over the given ipcRenderer. */
export function createInvigilatorApi(ipc: PreloadElectron['ipcRenderer']): InvigilatorApi {
  const callbacks: Array<(payload: unknown) => void> = [];
  let latest: { payload: unknown } | undefined;
  ipc.on(PRELOAD_CHANNELS.show, (_event, payload) => {
    latest = { payload };
    for (const callback of callbacks) callback(payload);
  });
  return Object.freeze({
    onShow(callback: (payload: unknown) => void): void {
      if (typeof callback !== 'function') return;
      callbacks.push(callback);
      if (latest) callback(latest.payload);
    },
    answer(noticeId: string, action: string, text?: string, target?: string): void {
      if (!isText(noticeId, MAX_ID) || !isText(action, MAX_ID)) return;
      if (text !== undefined && !isText(text, MAX_TEXT)) return;
      if (target !== undefined && !isText(target, MAX_ID)) return;
      ipc.send(PRELOAD_CHANNELS.answer, {
        noticeId,
        action,
        ...(text === undefined ? {} : { text }),
        ...(target === undefined ? {} : { target }),
      });
    },
    report(kind: ReportKind, text: string): void {
      if (!REPORT_KINDS.includes(kind) || !isText(text, MAX_TEXT)) return;
      ipc.send(PRELOAD_CHANNELS.report, { kind, text });
    },
    close(): void {
      ipc.send(PRELOAD_CHANNELS.close);
    },
    openPolicy(): void {
      ipc.send(PRELOAD_CHANNELS.openPolicy);
    },
  });
}

/** Exposes the API to the page; the composition below passes the real Electron, tests a stand-in. */
export function exposeInvigilator(electron: PreloadElectron): InvigilatorApi {
  const api = createInvigilatorApi(electron.ipcRenderer);
  electron.contextBridge.exposeInMainWorld('invigilator', api);
  return api;
}

// In a window's renderer process (never in Node or under Jest), expose it.
if (typeof process !== 'undefined' && (process as { type?: string }).type === 'renderer') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  exposeInvigilator(require('electron') as PreloadElectron);
}
