import { join } from 'node:path';
import { APP_SCHEME, serveRendererRequest, windowUrl } from './app-scheme';
import { validate } from '../../shared/schema';
import { type AgentToTray, type NOTICE_KINDS, PROTOCOL_VERSION, type TrayNotice, type TrayToAgent, trayAnswer, trayReport } from '../../shared/protocol';
import type { AgentConnection, TimeoutTimers } from './agent-client';
import { CHANNELS, type FROM_WINDOW_CHANNELS } from './channels';
import { UnsentReports } from './unsent-reports';
import type {
  BrowserWindowOptions,
  ElectronApi,
  ElectronBrowserWindow,
  ElectronTray,
  ElectronWebContents,
  IpcMainListener,
  MenuItemOptions,
} from './electron-api';

export type NoticeKind = (typeof NOTICE_KINDS)[number];
export type WindowName = 'notice' | 'countdown' | 'login-limit' | 'agreement' | 'report' | 'status';
export type TrayStatus = Extract<AgentToTray, { type: 'tray.status' }>;
export type IconState = TrayStatus['state'];

/** Which window shows which kind of notice. */
export const WINDOW_FOR_KIND: Readonly<Record<NoticeKind, WindowName>> = {
  'usb-blocked': 'notice',
  'device-blocked': 'notice',
  'software-blocked': 'notice',
  information: 'notice',
  'permission-decision': 'notice',
  'virus-warning': 'notice',
  'logoff-countdown': 'countdown',
  'login-limit': 'login-limit',
  'aup-agreement': 'agreement',
};

/**
 * Kinds that carry a deadline or a decision the session depends on: never
 * held back by the throttle (a countdown held back for a minute could log
 * someone off unwarned), though still never more than one window each.
 */
export const UNTHROTTLED_KINDS: readonly NoticeKind[] = ['logoff-countdown', 'login-limit', 'aup-agreement'];

export const MENU_LABELS = {
  status: 'Status',
  policy: "The school's ICT policy",
  askPermission: 'Ask for permission for a device',
  report: 'Report a problem',
  signOut: 'Sign out',
} as const;

export const TOOLTIPS: Readonly<Record<IconState, string>> = {
  protected: 'Invigilator: this computer is protected',
  attention: 'Invigilator: something needs your attention',
  disconnected: 'Invigilator: not connected to the school',
};

const WINDOW_SIZES: Readonly<Record<WindowName, { width: number; height: number }>> = {
  notice: { width: 480, height: 400 },
  countdown: { width: 440, height: 320 },
  'login-limit': { width: 520, height: 480 },
  agreement: { width: 640, height: 600 },
  report: { width: 520, height: 540 },
  status: { width: 440, height: 400 },
};

const REPORT_KINDS = ['broken', 'virus', 'upsetting'] as const;

/** Timers, injectable so that tests can drive the idle report and the throttle. */
export interface Timers extends TimeoutTimers {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const REAL_TIMERS: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

export interface TrayAppOptions {
  electron: ElectronApi;
  agent: AgentConnection;
  /** The compiled windows: `<rendererDir>/<window>/index.html`. */
  rendererDir: string;
  /** The compiled preload script. */
  preloadPath: string;
  /** The tray icons: `<iconDir>/<state>.png` for protected, attention, disconnected. */
  iconDir: string;
  /** Ends the user's session (the menu's "Sign out"); the composition root knows how on each OS. */
  signOut: () => void;
  /** Milliseconds since the epoch; injectable for the throttle. */
  now?: () => number;
  /** Notices of one kind open a window at most once in this many seconds (default 60). */
  throttleSeconds?: number;
  /** How often idle time goes to the agent (default 30 s). */
  idleIntervalMs?: number;
  timers?: Timers;
  unthrottledKinds?: readonly NoticeKind[];
  /** Ids for problem reports (default: random UUIDs). */
  newReportId?: () => string;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

/** A window slot: one per notice kind, plus the status and report windows. At most one window per slot. */
type Slot = NoticeKind | 'status' | 'report';

interface OpenWindow {
  readonly slot: Slot;
  readonly name: WindowName;
  readonly window: ElectronBrowserWindow;
  loaded: boolean;
  payload: unknown;
  /** The notice shown, if the window shows one: answers must be about it. */
  notice: TrayNotice | undefined;
  /** A notice the tray made itself (never sent to the agent). */
  local: boolean;
}

const MAX_ACTIVE_NOTICES = 50;
/** How often idle time goes to the agent while a logoff countdown is up. */
const IDLE_COUNTDOWN_MS = 5_000;

/** The notice the tray shows itself when asked for permission with no blocked device up. */
const ASK_PERMISSION_NOTICE: TrayNotice = {
  v: PROTOCOL_VERSION,
  type: 'tray.notice',
  noticeId: 'tray-ask-permission',
  kind: 'information',
  title: 'Asking to use a device',
  body: 'Plug the device in. If it is not allowed, a window will open with a button to ask your teacher for permission.',
  actions: ['dismiss'],
};

/**
 * The tray's main process, written against `ElectronApi` so that it runs on
 * the real Electron and on a stand-in alike. It has no authority: it shows
 * what the agent sends and passes on what the person at the computer answers.
 */
export class TrayApp {
  private readonly e: ElectronApi;
  private readonly agent: AgentConnection;
  private readonly timers: Timers;
  private readonly now: () => number;
  private readonly throttleMs: number;
  private readonly unthrottled: ReadonlySet<NoticeKind>;
  private readonly log: (message: string, fields?: Record<string, unknown>) => void;

  private tray: ElectronTray | undefined;
  private lastStatus: TrayStatus | undefined;
  private rendered: string | undefined;
  private idleTimer: unknown;
  private stopped = false;
  private readonly windows = new Map<Slot, OpenWindow>();
  /** Notices still up (not withdrawn), oldest first. */
  private readonly active = new Map<string, TrayNotice>();
  private readonly lastOpened = new Map<NoticeKind, number>();
  private readonly deferred = new Map<NoticeKind, TrayNotice>();
  private readonly deferTimers = new Map<NoticeKind, unknown>();
  private readonly ipcListeners = new Map<string, IpcMainListener>();
  /** Problem reports the agent has not acknowledged yet. */
  private readonly reports: UnsentReports;

  constructor(private readonly options: TrayAppOptions) {
    this.e = options.electron;
    this.agent = options.agent;
    this.timers = options.timers ?? REAL_TIMERS;
    this.now = options.now ?? Date.now;
    this.reports = new UnsentReports({
      send: (m) => this.agent.send(m),
      now: this.now,
      ...(options.newReportId ? { newId: options.newReportId } : {}),
    });
    this.throttleMs = (options.throttleSeconds ?? 60) * 1000;
    this.unthrottled = new Set(options.unthrottledKinds ?? UNTHROTTLED_KINDS);
    this.log = options.log ?? (() => undefined);
  }

  /** Starts the tray; false (and the app quits) when another instance already runs in this session. */
  async start(): Promise<boolean> {
    const { app } = this.e;
    if (!app.requestSingleInstanceLock()) {
      app.quit();
      return false;
    }
    app.on('second-instance', () => this.openStatus());
    // A tray app has no window open most of the time: closing the last one must not quit it.
    app.on('window-all-closed', () => undefined);
    // Must happen before ready: the scheme's pages get a real origin, so 'self' in their policy means them.
    this.e.protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true } }]);
    await app.whenReady();
    if (this.stopped) return false;
    this.e.protocol.handle(APP_SCHEME, async (request) => {
      const answer = await serveRendererRequest(this.options.rendererDir, request.url);
      return new Response(answer.status === 200 ? new Uint8Array(answer.body) : null, { status: answer.status, headers: answer.headers });
    });

    this.tray = new this.e.Tray(this.iconPath(this.iconState()));
    this.refreshTray();
    this.listen(CHANNELS.answer, (event, raw) => this.onAnswer(event.sender, raw));
    this.listen(CHANNELS.report, (event, raw) => this.onReport(event.sender, raw));
    this.listen(CHANNELS.close, (event) => this.windowOf(event.sender)?.window.close());
    this.listen(CHANNELS.openPolicy, (event) => {
      if (this.windowOf(event.sender)) this.openPolicy();
    });
    this.agent.onMessage((message) => {
      if (!this.stopped) this.onAgentMessage(message);
    });
    this.agent.onStatus((status) => {
      if (this.stopped) return;
      // Reports the agent never acknowledged go again on every new connection (it records each id once).
      if (status === 'connected') this.reports.resend();
      this.refreshTray();
      this.refreshStatusWindow();
    });
    this.agent.start();
    const interval = this.options.idleIntervalMs ?? 30_000;
    const step = Math.min(IDLE_COUNTDOWN_MS, interval);
    let elapsed = 0;
    // Every 30 s normally; every 5 s while a logoff countdown is up, so a mouse move stops it before the deadline.
    this.idleTimer = this.timers.setInterval(() => {
      this.reports.tick();
      elapsed += step;
      const countdown = [...this.active.values()].some((n) => n.kind === 'logoff-countdown');
      if (!countdown && elapsed < interval) return;
      elapsed = 0;
      this.reportIdle();
    }, step);
    return true;
  }

  stop(): void {
    this.stopped = true;
    if (this.idleTimer !== undefined) this.timers.clearInterval(this.idleTimer);
    for (const handle of this.deferTimers.values()) this.timers.clearTimeout(handle);
    this.deferTimers.clear();
    for (const [channel, listener] of this.ipcListeners) this.e.ipcMain.removeListener(channel, listener);
    this.ipcListeners.clear();
    for (const record of [...this.windows.values()]) if (!record.window.isDestroyed()) record.window.close();
    this.windows.clear();
    this.tray?.destroy();
    this.tray = undefined;
    this.agent.stop();
  }

  // ---- the tray icon and its menu ---------------------------------------------

  /** What the icon shows: the agent's word, or disconnected while the agent cannot be reached. */
  iconState(): IconState {
    if (this.agent.status !== 'connected') return 'disconnected';
    return this.lastStatus?.state ?? 'protected';
  }

  private iconPath(state: IconState): string {
    return join(this.options.iconDir, `${state}.png`);
  }

  private refreshTray(): void {
    const tray = this.tray;
    if (!tray) return;
    const state = this.iconState();
    const connected = this.agent.status === 'connected';
    const key = `${state}/${connected}`;
    if (key === this.rendered) return;
    this.rendered = key;
    tray.setImage(this.iconPath(state));
    tray.setToolTip(TOOLTIPS[state]);
    tray.setContextMenu(this.e.Menu.buildFromTemplate(this.menuTemplate(connected)));
  }

  private menuTemplate(connected: boolean): MenuItemOptions[] {
    return [
      { id: 'status', label: MENU_LABELS.status, click: () => this.openStatus() },
      { id: 'policy', label: MENU_LABELS.policy, click: () => this.openPolicy() },
      { type: 'separator' },
      // Both need the agent: nothing can be asked or reported while it cannot be reached.
      { id: 'ask-permission', label: MENU_LABELS.askPermission, enabled: connected, click: () => this.askPermission() },
      { id: 'report', label: MENU_LABELS.report, enabled: connected, click: () => this.openReport() },
      { type: 'separator' },
      { id: 'sign-out', label: MENU_LABELS.signOut, click: () => this.options.signOut() },
    ];
  }

  // ---- what the agent sends ------------------------------------------------------

  private onAgentMessage(message: AgentToTray): void {
    switch (message.type) {
      case 'tray.notice':
        return this.onNotice(message);
      case 'tray.withdraw':
        return this.withdraw(message.noticeId);
      case 'tray.status':
        this.lastStatus = message;
        this.refreshTray();
        this.refreshStatusWindow();
        return;
      case 'tray.report.ack':
        // Recorded, or counted under the agent's rate rules (which then says so in a notice of its own): kept no longer.
        return this.reports.acknowledged(message.reportId);
      default: {
        const unhandled: never = message;
        this.log('unhandled agent message', { message: unhandled });
      }
    }
  }

  private onNotice(notice: TrayNotice): void {
    this.active.delete(notice.noticeId);
    this.active.set(notice.noticeId, notice);
    while (this.active.size > MAX_ACTIVE_NOTICES) this.active.delete(this.active.keys().next().value!);
    this.showNotice(notice);
  }

  private showNotice(notice: TrayNotice): void {
    const kind = notice.kind;
    const open = this.windows.get(kind);
    // Never a second window of one kind: the open one shows the new notice instead.
    if (open) return this.present(open, notice, notice, false);
    if (!this.unthrottled.has(kind)) {
      const last = this.lastOpened.get(kind);
      const wait = last === undefined ? 0 : last + this.throttleMs - this.now();
      if (wait > 0) return this.defer(notice, wait);
    }
    this.lastOpened.set(kind, this.now());
    this.openWindow(kind, WINDOW_FOR_KIND[kind], notice, notice, false);
  }

  /** Holds a notice back until its kind may open a window again; a later one of the same kind takes its place. */
  private defer(notice: TrayNotice, wait: number): void {
    const kind = notice.kind;
    this.deferred.set(kind, notice);
    this.log('notice held back by the throttle', { kind, noticeId: notice.noticeId, waitMs: wait });
    if (this.deferTimers.has(kind)) return;
    const handle = this.timers.setTimeout(() => {
      this.deferTimers.delete(kind);
      const held = this.deferred.get(kind);
      this.deferred.delete(kind);
      if (!this.stopped && held && this.active.has(held.noticeId)) this.showNotice(held);
    }, wait);
    this.deferTimers.set(kind, handle);
  }

  private withdraw(noticeId: string): void {
    this.active.delete(noticeId);
    for (const [kind, held] of this.deferred) if (held.noticeId === noticeId) this.deferred.delete(kind);
    for (const record of [...this.windows.values()]) {
      if (!record.local && record.notice?.noticeId === noticeId && !record.window.isDestroyed()) record.window.close();
    }
  }

  // ---- windows ----------------------------------------------------------------------

  private openStatus(): void {
    this.showIn('status', 'status', this.statusPayload(), undefined, false);
  }

  private openReport(): void {
    this.showIn('report', 'report', { type: 'report', kinds: REPORT_KINDS }, undefined, false);
  }

  /** The school's policy: the address comes from the agent's status, never from a window. */
  private openPolicy(): void {
    const url = this.lastStatus?.policyUrl;
    if (url && /^https?:\/\//i.test(url)) {
      this.e.shell.openExternal(url).catch((error: unknown) => this.log('could not open the policy', { error: String(error) }));
      return;
    }
    // No address known: the status window names the policy and its version.
    this.openStatus();
  }

  /** Reopens the latest blocked device's notice (it has the button); otherwise explains how to ask. */
  private askPermission(): void {
    const blocked = [...this.active.values()]
      .reverse()
      .find((n) => (n.kind === 'usb-blocked' || n.kind === 'device-blocked') && n.actions.includes('ask-permission'));
    if (blocked) return this.showIn(blocked.kind, WINDOW_FOR_KIND[blocked.kind], blocked, blocked, false);
    this.showIn('information', 'notice', ASK_PERMISSION_NOTICE, ASK_PERMISSION_NOTICE, true);
  }

  /** Shows a payload in a slot's window, opening it if none is open. Asked for by the person, so never throttled. */
  private showIn(slot: Slot, name: WindowName, payload: unknown, notice: TrayNotice | undefined, local: boolean): void {
    const open = this.windows.get(slot);
    if (open) return this.present(open, payload, notice, local);
    this.openWindow(slot, name, payload, notice, local);
  }

  private statusPayload(): TrayStatus {
    const status: TrayStatus = this.lastStatus ?? {
      v: PROTOCOL_VERSION,
      type: 'tray.status',
      state: 'disconnected',
      policyName: '',
      policyRevision: 0,
      connectedSince: null,
      lastEvent: null,
    };
    return { ...status, state: this.iconState() };
  }

  private refreshStatusWindow(): void {
    const open = this.windows.get('status');
    if (open) this.present(open, this.statusPayload(), undefined, false, false);
  }

  private openWindow(slot: Slot, name: WindowName, payload: unknown, notice: TrayNotice | undefined, local: boolean): void {
    const options: BrowserWindowOptions = {
      ...WINDOW_SIZES[name],
      show: false,
      title: 'Invigilator',
      resizable: false,
      autoHideMenuBar: true,
      center: true,
      webPreferences: {
        contextIsolation: true,
        sandbox: true,
        nodeIntegration: false,
        webSecurity: true,
        spellcheck: false,
        preload: this.options.preloadPath,
      },
    };
    const window = new this.e.BrowserWindow(options);
    const record: OpenWindow = { slot, name, window, loaded: false, payload, notice, local };
    this.windows.set(slot, record);
    // Our pages never leave our pages, and never open another window.
    window.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
    window.webContents.on('will-navigate', (event) => event.preventDefault());
    window.on('closed', () => {
      if (this.windows.get(slot) === record) this.windows.delete(slot);
    });
    window.loadURL(windowUrl(name)).then(
      () => {
        if (window.isDestroyed()) return;
        record.loaded = true;
        this.deliver(record);
        window.show();
        window.focus();
      },
      (error: unknown) => {
        this.log('a window did not load', { window: name, error: String(error) });
        if (!window.isDestroyed()) window.close();
      },
    );
  }

  /** New content for an open window; sent now if the page has loaded, else once it has. */
  private present(record: OpenWindow, payload: unknown, notice: TrayNotice | undefined, local: boolean, focus = true): void {
    record.payload = payload;
    record.notice = notice;
    record.local = local;
    if (!record.loaded || record.window.isDestroyed()) return;
    this.deliver(record);
    if (focus) record.window.focus();
  }

  private deliver(record: OpenWindow): void {
    const { webContents } = record.window;
    if (!webContents.isDestroyed()) webContents.send(CHANNELS.show, record.payload);
  }

  /** Our window whose page sent a message; undefined for any other sender, whose messages are ignored. */
  private windowOf(sender: ElectronWebContents): OpenWindow | undefined {
    for (const record of this.windows.values()) if (record.window.webContents === sender && !record.window.isDestroyed()) return record;
    return undefined;
  }

  // ---- what the windows send ----------------------------------------------------------

  private listen(channel: (typeof FROM_WINDOW_CHANNELS)[number], listener: IpcMainListener): void {
    this.ipcListeners.set(channel, listener);
    this.e.ipcMain.on(channel, listener);
  }

  private onAnswer(sender: ElectronWebContents, raw: unknown): void {
    const record = this.windowOf(sender);
    const notice = record?.notice;
    if (!record || !notice) return this.log('an answer from a window that shows no notice was ignored');
    if (raw === null || typeof raw !== 'object') return this.log('a malformed answer was ignored');
    const { noticeId, action, text, target } = raw as Record<string, unknown>;
    const decoded = validate(trayAnswer, {
      v: PROTOCOL_VERSION,
      type: 'tray.answer',
      noticeId,
      action,
      ...(text === undefined ? {} : { text }),
      ...(target === undefined ? {} : { target }),
    });
    if (!decoded.ok) return this.log('a malformed answer was ignored', { code: decoded.problems[0]?.code });
    const answer = decoded.value;
    // A window answers only the notice it shows, and only with an action that notice offers.
    if (answer.noticeId !== notice.noticeId || !notice.actions.includes(answer.action)) return this.log('an answer to another notice was ignored');
    if (answer.action === 'sign-out-other' && !notice.sessions?.some((s) => s.sessionId === answer.target)) {
      return this.log('sign-out-other for a session the notice did not offer was ignored');
    }
    if (!record.local && !this.sendToAgent(answer)) return;
    if (answer.action === 'dismiss') record.window.close();
  }

  private onReport(sender: ElectronWebContents, raw: unknown): void {
    if (!this.windowOf(sender)) return this.log('a report from a window that is not ours was ignored');
    if (raw === null || typeof raw !== 'object') return this.log('a malformed report was ignored');
    const { kind, text } = raw as Record<string, unknown>;
    const decoded = validate(trayReport, { v: PROTOCOL_VERSION, type: 'tray.report', kind, text });
    if (!decoded.ok) return this.log('a malformed report was ignored', { code: decoded.problems[0]?.code });
    // Kept until the agent acknowledges it, and sent again meanwhile: a report is never lost to a dropped connection.
    if (!this.reports.submit(decoded.value)) {
      this.notify('Your report will be passed on', 'Invigilator cannot reach its service just now. It will pass your report on as soon as it can.');
    }
  }

  private sendToAgent(message: TrayToAgent): boolean {
    if (this.agent.send(message)) return true;
    this.notify('That did not get through', 'Invigilator could not pass that on just now. Please try again in a minute.');
    return false;
  }

  private notify(title: string, body: string): void {
    if (this.e.Notification.isSupported()) new this.e.Notification({ title, body }).show();
  }

  private reportIdle(): void {
    if (this.agent.status !== 'connected') return;
    const seconds = this.e.powerMonitor.getSystemIdleTime();
    const idleSeconds = Number.isFinite(seconds) ? Math.max(0, Math.floor(seconds)) : 0;
    this.agent.send({ v: PROTOCOL_VERSION, type: 'tray.idle', idleSeconds });
  }
}
