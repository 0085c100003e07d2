/**
 * The parts of Electron (45) the tray's main process uses, and nothing more.
 * The main process is written against this interface so that it can be tested
 * with a stand-in (`test/tray-ui/electron-stand-in.ts`); the composition root
 * (`index.ts`) hands it the real `require('electron')`. Names and signatures
 * follow Electron's own API documentation; where Electron accepts more (a
 * NativeImage, extra listener arguments, more events), this lists only what we
 * pass or read.
 */

/** `app`: the application's lifecycle. */
export interface ElectronAppApi {
  /** Resolves when Electron has finished initialising (the `ready` event). */
  whenReady(): Promise<void>;
  /** True in the first instance; false when another instance already holds the lock (then quit). */
  requestSingleInstanceLock(): boolean;
  /**
   * `second-instance`: someone started the tray again in this session.
   * `window-all-closed`: subscribing stops Electron's default of quitting when the last window closes (a tray app has none open most of the time).
   */
  on(event: 'second-instance' | 'window-all-closed', listener: () => void): void;
  quit(): void;
}

/** A menu item template, as `Menu.buildFromTemplate` takes it. */
export interface MenuItemOptions {
  label?: string;
  /** Electron passes (menuItem, window, event); we use none of them. */
  click?: () => void;
  enabled?: boolean;
  type?: 'normal' | 'separator';
  id?: string;
}

/** A built menu: opaque to us apart from its items. */
export interface ElectronMenu {
  readonly items: readonly unknown[];
}

export interface ElectronMenuApi {
  buildFromTemplate(template: MenuItemOptions[]): ElectronMenu;
}

/** `Tray`: the icon in the notification area. */
export interface ElectronTray {
  /** An image path (Electron also accepts a NativeImage). */
  setImage(image: string): void;
  setToolTip(toolTip: string): void;
  setContextMenu(menu: ElectronMenu | null): void;
  destroy(): void;
}

/** `webPreferences`: exactly the security settings every tray window gets. */
export interface WebPreferences {
  contextIsolation: boolean;
  sandbox: boolean;
  nodeIntegration: boolean;
  webSecurity: boolean;
  spellcheck: boolean;
  /** Absolute path of the preload script. */
  preload: string;
}

export interface BrowserWindowOptions {
  width?: number;
  height?: number;
  /** Created hidden, shown once the page has loaded. */
  show?: boolean;
  title?: string;
  resizable?: boolean;
  minimizable?: boolean;
  maximizable?: boolean;
  fullscreenable?: boolean;
  autoHideMenuBar?: boolean;
  center?: boolean;
  webPreferences: WebPreferences;
}

/** The event Electron passes to `will-navigate` listeners (Electron 25+ puts the details on it). */
export interface NavigationEvent {
  preventDefault(): void;
  url?: string;
}

/** What a `setWindowOpenHandler` handler returns; we only ever deny. */
export type WindowOpenResponse = { action: 'deny' } | { action: 'allow' };

/** `webContents` of a window: the page inside it. */
export interface ElectronWebContents {
  /** Sends to the page; the preload receives it with `ipcRenderer.on(channel)`. */
  send(channel: string, ...args: unknown[]): void;
  /** Called for `window.open` and links with `target=_blank`. */
  setWindowOpenHandler(handler: (details: { url: string }) => WindowOpenResponse): void;
  on(event: 'will-navigate', listener: (event: NavigationEvent) => void): void;
  isDestroyed(): boolean;
}

export interface ElectronBrowserWindow {
  readonly webContents: ElectronWebContents;
  /** Our pages come from the app's own scheme (app-scheme.ts), never from file://. */
  loadURL(url: string): Promise<void>;
  show(): void;
  focus(): void;
  close(): void;
  isDestroyed(): boolean;
  on(event: 'closed', listener: () => void): void;
}

/** The event `ipcMain` listeners get: `sender` is the webContents the message came from. */
export interface IpcMainEvent {
  readonly sender: ElectronWebContents;
}

export type IpcMainListener = (event: IpcMainEvent, ...args: unknown[]) => void;

export interface ElectronIpcMain {
  on(channel: string, listener: IpcMainListener): void;
  removeListener(channel: string, listener: IpcMainListener): void;
}

export interface NotificationOptions {
  title: string;
  body: string;
  silent?: boolean;
}

/** A native desktop notification (a toast). */
export interface ElectronNotification {
  show(): void;
}

export interface ElectronNotificationApi {
  new (options: NotificationOptions): ElectronNotification;
  isSupported(): boolean;
}

export interface ElectronPowerMonitor {
  /** Seconds since the last keyboard or mouse input. */
  getSystemIdleTime(): number;
}

export interface ElectronShell {
  openExternal(url: string): Promise<void>;
}

/** `protocol`: the app's own scheme for its pages. Schemes are registered as privileged before `ready`. */
export interface ElectronProtocol {
  registerSchemesAsPrivileged(schemes: Array<{ scheme: string; privileges: { standard?: boolean; secure?: boolean; supportFetchAPI?: boolean } }>): void;
  handle(scheme: string, handler: (request: { url: string }) => Promise<Response>): void;
}

/** Everything the main process takes from `require('electron')`. */
export interface ElectronApi {
  protocol: ElectronProtocol;
  app: ElectronAppApi;
  Tray: new (image: string) => ElectronTray;
  Menu: ElectronMenuApi;
  BrowserWindow: new (options: BrowserWindowOptions) => ElectronBrowserWindow;
  Notification: ElectronNotificationApi;
  ipcMain: ElectronIpcMain;
  powerMonitor: ElectronPowerMonitor;
  shell: ElectronShell;
}
