/**
 * A stand-in for the parts of Electron the tray's main process uses
 * (`tray-ui/main/electron-api.ts`), recording everything done to it, plus a
 * fake clock with timers and a fake agent connection.
 */
import type { AgentConnection, ConnectionStatus } from '../../tray-ui/main/agent-client';
import type {
  BrowserWindowOptions,
  ElectronApi,
  ElectronBrowserWindow,
  ElectronMenu,
  ElectronTray,
  ElectronWebContents,
  IpcMainListener,
  MenuItemOptions,
  NavigationEvent,
  NotificationOptions,
  WindowOpenResponse,
} from '../../tray-ui/main/electron-api';
import type { Timers } from '../../tray-ui/main/tray-app';
import type { AgentToTray, TrayToAgent } from '../../shared/protocol';

export class StandInWebContents implements ElectronWebContents {
  readonly sent: Array<{ channel: string; args: unknown[] }> = [];
  windowOpenHandler: ((details: { url: string }) => WindowOpenResponse) | undefined;
  readonly navigateListeners: Array<(event: NavigationEvent) => void> = [];
  destroyed = false;

  send(channel: string, ...args: unknown[]): void {
    if (this.destroyed) throw new Error('send to a destroyed webContents');
    this.sent.push({ channel, args });
  }
  setWindowOpenHandler(handler: (details: { url: string }) => WindowOpenResponse): void {
    this.windowOpenHandler = handler;
  }
  on(event: 'will-navigate', listener: (event: NavigationEvent) => void): void {
    if (event === 'will-navigate') this.navigateListeners.push(listener);
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }

  /** What a page trying to navigate away gets: true when some listener prevented it. */
  tryNavigate(url: string): boolean {
    let prevented = false;
    for (const l of this.navigateListeners) l({ url, preventDefault: () => (prevented = true) });
    return prevented;
  }
  /** What `window.open(url)` in the page gets. */
  tryWindowOpen(url: string): WindowOpenResponse | undefined {
    return this.windowOpenHandler?.({ url });
  }
  /** Payloads sent on a channel, in order. */
  payloads(channel: string): unknown[] {
    return this.sent.filter((s) => s.channel === channel).map((s) => s.args[0]);
  }
}

export class StandInBrowserWindow implements ElectronBrowserWindow {
  readonly webContents = new StandInWebContents();
  loadedUrl: string | undefined;
  shown = 0;
  focused = 0;
  destroyed = false;
  private readonly closedListeners: Array<() => void> = [];
  private resolveLoad: (() => void) | undefined;

  constructor(
    readonly options: BrowserWindowOptions,
    private readonly autoLoad: boolean,
  ) {}

  loadURL(url: string): Promise<void> {
    this.loadedUrl = url;
    if (this.autoLoad) return Promise.resolve();
    return new Promise((resolve) => (this.resolveLoad = resolve));
  }
  /** Finishes a load held back (`autoLoad: false`). */
  finishLoad(): void {
    this.resolveLoad?.();
  }
  show(): void {
    this.shown++;
  }
  focus(): void {
    this.focused++;
  }
  close(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.webContents.destroyed = true;
    for (const l of this.closedListeners) l();
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  on(event: 'closed', listener: () => void): void {
    if (event === 'closed') this.closedListeners.push(listener);
  }
}

export class StandInTray implements ElectronTray {
  readonly images: string[] = [];
  readonly toolTips: string[] = [];
  menu: { items: readonly MenuItemOptions[] } | null = null;
  destroyed = false;

  constructor(readonly initialImage: string) {}

  setImage(image: string): void {
    this.images.push(image);
  }
  setToolTip(toolTip: string): void {
    this.toolTips.push(toolTip);
  }
  setContextMenu(menu: ElectronMenu | null): void {
    this.menu = menu as { items: readonly MenuItemOptions[] } | null;
  }
  destroy(): void {
    this.destroyed = true;
  }

  labels(): string[] {
    return (this.menu?.items ?? []).filter((i) => i.type !== 'separator').map((i) => i.label ?? '');
  }
  item(label: string): MenuItemOptions {
    const item = this.menu?.items.find((i) => i.label === label);
    if (!item) throw new Error(`no menu item "${label}"; the menu has ${JSON.stringify(this.labels())}`);
    return item;
  }
  /** Clicks a menu item as a person would: a disabled item does nothing. */
  click(label: string): void {
    const item = this.item(label);
    if (item.enabled === false) return;
    item.click?.();
  }
}

export interface StandInOptions {
  /** Whether this instance gets the single-instance lock. */
  lock?: boolean;
  /** Whether windows finish loading at once; otherwise call finishLoad(). */
  autoLoad?: boolean;
}

/** A stand-in ElectronApi, with the record of what was done to it. */
export class ElectronStandIn {
  readonly windows: StandInBrowserWindow[] = [];
  readonly trays: StandInTray[] = [];
  readonly notifications: Array<NotificationOptions & { shown: boolean }> = [];
  readonly openedExternally: string[] = [];
  readonly appListeners = new Map<string, Array<() => void>>();
  readonly ipcListeners = new Map<string, IpcMainListener[]>();
  idleSeconds = 0;
  quitCalled = 0;
  ready = false;
  readonly privilegedSchemes: string[] = [];
  readonly schemeHandlers = new Map<string, (request: { url: string }) => Promise<Response>>();
  readonly api: ElectronApi;

  constructor(options: StandInOptions = {}) {
    const { trays, windows, notifications } = this;
    const autoLoad = options.autoLoad ?? true;
    class Tray extends StandInTray {
      constructor(image: string) {
        super(image);
        trays.push(this);
      }
    }
    class BrowserWindow extends StandInBrowserWindow {
      constructor(o: BrowserWindowOptions) {
        super(o, autoLoad);
        windows.push(this);
      }
    }
    class Notification {
      private readonly record: NotificationOptions & { shown: boolean };
      constructor(o: NotificationOptions) {
        this.record = { ...o, shown: false };
        notifications.push(this.record);
      }
      show(): void {
        this.record.shown = true;
      }
      static isSupported(): boolean {
        return true;
      }
    }
    this.api = {
      protocol: {
        registerSchemesAsPrivileged: (schemes) => {
          if (this.ready) throw new Error('registerSchemesAsPrivileged after ready (Electron ignores it then)');
          this.privilegedSchemes.push(...schemes.map((s) => s.scheme));
        },
        handle: (scheme, handler) => this.schemeHandlers.set(scheme, handler),
      },
      app: {
        whenReady: () => {
          this.ready = true;
          return Promise.resolve();
        },
        requestSingleInstanceLock: () => options.lock ?? true,
        on: (event, listener) => this.appListeners.set(event, [...(this.appListeners.get(event) ?? []), listener]),
        quit: () => void this.quitCalled++,
      },
      Tray,
      Menu: { buildFromTemplate: (template: MenuItemOptions[]) => ({ items: template }) },
      BrowserWindow,
      Notification,
      ipcMain: {
        on: (channel, listener) => this.ipcListeners.set(channel, [...(this.ipcListeners.get(channel) ?? []), listener]),
        removeListener: (channel, listener) =>
          this.ipcListeners.set(
            channel,
            (this.ipcListeners.get(channel) ?? []).filter((l) => l !== listener),
          ),
      },
      powerMonitor: { getSystemIdleTime: () => this.idleSeconds },
      shell: {
        openExternal: (url) => {
          this.openedExternally.push(url);
          return Promise.resolve();
        },
      },
    };
  }

  get tray(): StandInTray {
    const tray = this.trays[0];
    if (!tray) throw new Error('no tray was created');
    return tray;
  }

  /** Windows not closed. */
  openWindows(): StandInBrowserWindow[] {
    return this.windows.filter((w) => !w.destroyed);
  }

  /** The open windows showing one page (`notice`, `status`, ...). */
  windowsShowing(name: string): StandInBrowserWindow[] {
    return this.openWindows().filter((w) => w.loadedUrl?.replace(/\\/g, '/').endsWith(`/${name}/index.html`));
  }

  /** A message from a page, as ipcRenderer.send would deliver it. */
  sendFromPage(sender: ElectronWebContents, channel: string, ...args: unknown[]): void {
    for (const l of this.ipcListeners.get(channel) ?? []) l({ sender }, ...args);
  }

  emitApp(event: string): void {
    for (const l of this.appListeners.get(event) ?? []) l();
  }
}

/** A clock and timers that move only when told to. */
export class FakeTime implements Timers {
  now = 1_700_000_000_000;
  private nextId = 1;
  private readonly pending = new Map<number, { at: number; every: number | undefined; callback: () => void }>();

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.now + ms, every: undefined, callback });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  setInterval(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.now + ms, every: ms, callback });
    return id;
  }
  clearInterval(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  get timerCount(): number {
    return this.pending.size;
  }

  /** Moves the clock on, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: [number, { at: number; every: number | undefined; callback: () => void }] | undefined;
      for (const entry of this.pending) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      const [id, timer] = next;
      this.now = timer.at;
      if (timer.every === undefined) this.pending.delete(id);
      else timer.at += timer.every;
      timer.callback();
    }
    this.now = end;
  }
}

/** An agent connection that records what the tray sends and delivers what a test says the agent sent. */
export class FakeAgent implements AgentConnection {
  status: ConnectionStatus = 'connected';
  readonly sent: TrayToAgent[] = [];
  started = 0;
  stopped = 0;
  private readonly messageListeners: Array<(message: AgentToTray) => void> = [];
  private readonly statusListeners: Array<(status: ConnectionStatus) => void> = [];

  start(): void {
    this.started++;
  }
  stop(): void {
    this.stopped++;
  }
  send(message: TrayToAgent): boolean {
    if (this.status !== 'connected') return false;
    this.sent.push(message);
    return true;
  }
  onMessage(listener: (message: AgentToTray) => void): void {
    this.messageListeners.push(listener);
  }
  onStatus(listener: (status: ConnectionStatus) => void): void {
    this.statusListeners.push(listener);
  }

  deliver(message: AgentToTray): void {
    for (const l of this.messageListeners) l(message);
  }
  setStatus(status: ConnectionStatus): void {
    this.status = status;
    for (const l of this.statusListeners) l(status);
  }
}
