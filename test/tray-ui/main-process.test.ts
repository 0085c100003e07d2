import { join } from 'node:path';
import type { TrayNotice } from '../../shared/protocol';
import { CHANNELS, FROM_WINDOW_CHANNELS } from '../../tray-ui/main/channels';
import { parseTasklistSession, signOutCommand, traySocketPath } from '../../tray-ui/main/session';
import { MENU_LABELS, TOOLTIPS, TrayApp, type TrayAppOptions, type TrayStatus, WINDOW_FOR_KIND } from '../../tray-ui/main/tray-app';
import { PRELOAD_CHANNELS, type PreloadElectron, exposeInvigilator } from '../../tray-ui/preload/preload';
import { ElectronStandIn, FakeAgent, FakeTime, type StandInBrowserWindow, type StandInOptions } from './electron-stand-in';

const RENDERER = '/opt/invigilator/tray-ui/renderer';
const PRELOAD = '/opt/invigilator/tray-ui/preload/preload.js';
const ICONS = '/opt/invigilator/tray-ui/icons';

const notice = (noticeId: string, kind: TrayNotice['kind'] = 'usb-blocked', extra: Partial<TrayNotice> = {}): TrayNotice => ({
  v: 1,
  type: 'tray.notice',
  noticeId,
  kind,
  title: 'This memory stick is not allowed',
  body: 'Please take it out.',
  actions: ['dismiss', 'ask-permission'],
  ...extra,
});

const status = (state: TrayStatus['state'], extra: Partial<TrayStatus> = {}): TrayStatus => ({
  v: 1,
  type: 'tray.status',
  state,
  policyName: 'Basildon Primary ICT policy',
  policyRevision: 3,
  connectedSince: '2025-01-06T08:00:00Z',
  lastEvent: null,
  ...extra,
});

const flush = () => new Promise((resolve) => setImmediate(resolve));

async function startTray(standIn: StandInOptions = {}, options: Partial<TrayAppOptions> = {}) {
  const electron = new ElectronStandIn(standIn);
  const agent = new FakeAgent();
  const time = new FakeTime();
  const signOuts: number[] = [];
  const app = new TrayApp({
    electron: electron.api,
    agent,
    rendererDir: RENDERER,
    preloadPath: PRELOAD,
    iconDir: ICONS,
    signOut: () => signOuts.push(time.now),
    now: () => time.now,
    timers: time,
    ...options,
  });
  const started = await app.start();
  await flush();
  return { electron, agent, time, app, started, signOuts };
}

/** The single open window showing a page; fails unless there is exactly one. */
function only(electron: ElectronStandIn, name: string): StandInBrowserWindow {
  const windows = electron.windowsShowing(name);
  expect(windows).toHaveLength(1);
  return windows[0]!;
}

describe('the tray main process', () => {
  let tray: Awaited<ReturnType<typeof startTray>>;
  afterEach(() => tray?.app.stop());

  describe('one instance per session', () => {
    it('quits when another instance holds the lock, creating nothing', async () => {
      tray = await startTray({ lock: false });
      expect(tray.started).toBe(false);
      expect(tray.electron.quitCalled).toBe(1);
      expect(tray.electron.trays).toHaveLength(0);
      expect(tray.agent.started).toBe(0);
    });

    it('opens the status window when started a second time, and does not quit when its last window closes', async () => {
      tray = await startTray();
      expect(tray.started).toBe(true);
      expect(tray.agent.started).toBe(1);
      tray.electron.emitApp('second-instance');
      await flush();
      only(tray.electron, 'status').close();
      tray.electron.emitApp('window-all-closed');
      expect(tray.electron.appListeners.get('window-all-closed')).toHaveLength(1);
      expect(tray.electron.quitCalled).toBe(0);
    });
  });

  describe('the menu', () => {
    it('has the five items, in order', async () => {
      tray = await startTray();
      expect(tray.electron.tray.labels()).toEqual(['Status', "The school's ICT policy", 'Ask for permission for a device', 'Report a problem', 'Sign out']);
    });

    it.each([
      [MENU_LABELS.status, 'status'],
      [MENU_LABELS.report, 'report'],
      [MENU_LABELS.askPermission, 'notice'],
    ])('"%s" opens the %s window and nothing else', async (label, page) => {
      tray = await startTray();
      tray.electron.tray.click(label);
      await flush();
      expect(tray.electron.openWindows()).toHaveLength(1);
      const window = only(tray.electron, page);
      expect(window.loadedUrl).toBe(`invigilator://tray/${page}/index.html`);
      expect(window.shown).toBe(1);
    });

    it('"Report a problem" shows the report form; clicking it again reuses the window', async () => {
      tray = await startTray();
      tray.electron.tray.click(MENU_LABELS.report);
      await flush();
      tray.electron.tray.click(MENU_LABELS.report);
      await flush();
      const window = only(tray.electron, 'report');
      expect(window.webContents.payloads(CHANNELS.show)).toEqual([
        { type: 'report', kinds: ['broken', 'virus', 'upsetting'] },
        { type: 'report', kinds: ['broken', 'virus', 'upsetting'] },
      ]);
    });

    it('"Status" shows the agent\'s status', async () => {
      tray = await startTray();
      tray.agent.deliver(status('protected'));
      tray.electron.tray.click(MENU_LABELS.status);
      await flush();
      expect(only(tray.electron, 'status').webContents.payloads(CHANNELS.show)).toEqual([status('protected')]);
    });

    it('"The school\'s ICT policy" opens the address the agent gave, in the browser', async () => {
      tray = await startTray();
      tray.agent.deliver(status('protected', { policyUrl: 'https://school.example/ict-policy' }));
      tray.electron.tray.click(MENU_LABELS.policy);
      expect(tray.electron.openedExternally).toEqual(['https://school.example/ict-policy']);
      expect(tray.electron.openWindows()).toHaveLength(0);
    });

    it('"The school\'s ICT policy" without an address shows the status window, which names the policy', async () => {
      tray = await startTray();
      tray.electron.tray.click(MENU_LABELS.policy);
      await flush();
      expect(tray.electron.openedExternally).toEqual([]);
      only(tray.electron, 'status');
    });

    it('"Sign out" signs out and opens nothing', async () => {
      tray = await startTray();
      tray.electron.tray.click(MENU_LABELS.signOut);
      expect(tray.signOuts).toHaveLength(1);
      expect(tray.electron.openWindows()).toHaveLength(0);
    });

    it('"Ask for permission" reopens the blocked stick\'s notice, which has the button', async () => {
      tray = await startTray();
      tray.agent.deliver(notice('usb-1'));
      await flush();
      only(tray.electron, 'notice').close();
      tray.time.advance(5_000); // inside the throttle: asked for, so shown anyway
      tray.electron.tray.click(MENU_LABELS.askPermission);
      await flush();
      expect(only(tray.electron, 'notice').webContents.payloads(CHANNELS.show)).toEqual([notice('usb-1')]);
    });

    it('"Ask for permission" and "Report a problem" are disabled while the agent cannot be reached', async () => {
      tray = await startTray();
      tray.agent.setStatus('disconnected');
      expect(tray.electron.tray.item(MENU_LABELS.askPermission).enabled).toBe(false);
      expect(tray.electron.tray.item(MENU_LABELS.report).enabled).toBe(false);
      expect(tray.electron.tray.item(MENU_LABELS.status).enabled).not.toBe(false);
      tray.electron.tray.click(MENU_LABELS.report);
      expect(tray.electron.windows).toHaveLength(0);
      tray.agent.setStatus('connected');
      expect(tray.electron.tray.item(MENU_LABELS.report).enabled).toBe(true);
    });
  });

  describe('every window', () => {
    it('is created hidden with the secure webPreferences and our preload, and shown once its page has loaded', async () => {
      tray = await startTray({ autoLoad: false });
      tray.agent.deliver(notice('usb-1'));
      tray.electron.tray.click(MENU_LABELS.status);
      tray.electron.tray.click(MENU_LABELS.report);
      tray.agent.deliver(notice('c-1', 'logoff-countdown', { actions: ['still-here'], deadline: '2025-01-06T15:30:00Z' }));
      tray.agent.deliver(notice('l-1', 'login-limit', { actions: ['sign-out-here'] }));
      tray.agent.deliver(notice('a-1', 'aup-agreement', { actions: ['agree', 'decline'] }));
      expect(tray.electron.windows).toHaveLength(6);
      for (const window of tray.electron.windows) {
        expect(window.options.webPreferences).toEqual({
          contextIsolation: true,
          sandbox: true,
          nodeIntegration: false,
          webSecurity: true,
          spellcheck: false,
          preload: PRELOAD,
        });
        expect(window.options.show).toBe(false);
        expect(window.shown).toBe(0);
        expect(window.webContents.sent).toEqual([]);
      }
      expect(tray.electron.windows.map((w) => w.loadedUrl)).toEqual(
        ['notice', 'status', 'report', 'countdown', 'login-limit', 'agreement'].map((n) => `invigilator://tray/${n}/index.html`),
      );
      for (const window of tray.electron.windows) window.finishLoad();
      await flush();
      for (const window of tray.electron.windows) {
        expect(window.shown).toBe(1);
        expect(window.webContents.sent).toHaveLength(1);
        expect(window.webContents.sent[0]!.channel).toBe(CHANNELS.show);
      }
    });

    it('cannot navigate away or open another window', async () => {
      tray = await startTray();
      tray.agent.deliver(notice('usb-1'));
      tray.electron.tray.click(MENU_LABELS.status);
      await flush();
      expect(tray.electron.windows).toHaveLength(2);
      for (const window of tray.electron.windows) {
        expect(window.webContents.tryNavigate('https://evil.example/')).toBe(true);
        expect(window.webContents.tryNavigate('file:///etc/passwd')).toBe(true);
        expect(window.webContents.tryWindowOpen('https://evil.example/')).toEqual({ action: 'deny' });
      }
      expect(tray.electron.openedExternally).toEqual([]);
    });

    it('listens on the allow-listed channels only, and sends only on the show channel', async () => {
      tray = await startTray();
      expect([...tray.electron.ipcListeners.keys()].sort()).toEqual([...FROM_WINDOW_CHANNELS].sort());
      tray.agent.deliver(notice('usb-1'));
      await flush();
      expect(new Set(tray.electron.windows.flatMap((w) => w.webContents.sent.map((s) => s.channel)))).toEqual(new Set([CHANNELS.show]));
    });
  });

  describe('notices', () => {
    it.each(Object.entries(WINDOW_FOR_KIND))('a %s notice opens the %s window with the notice', async (kind, page) => {
      tray = await startTray();
      const n = notice('n-1', kind as TrayNotice['kind']);
      tray.agent.deliver(n);
      await flush();
      expect(tray.electron.openWindows()).toHaveLength(1);
      expect(only(tray.electron, page).webContents.payloads(CHANNELS.show)).toEqual([n]);
    });

    it('sends the notice only after the page has loaded, then the latest if it changed meanwhile', async () => {
      tray = await startTray({ autoLoad: false });
      tray.agent.deliver(notice('usb-1'));
      tray.agent.deliver(notice('usb-2'));
      const window = tray.electron.windows[0]!;
      expect(tray.electron.windows).toHaveLength(1);
      expect(window.webContents.sent).toEqual([]);
      window.finishLoad();
      await flush();
      expect(window.webContents.payloads(CHANNELS.show)).toEqual([notice('usb-2')]);
    });

    it('never opens a second window of one kind: the open one shows the newer notice', async () => {
      tray = await startTray();
      for (let i = 1; i <= 20; i++) tray.agent.deliver(notice(`usb-${i}`));
      await flush();
      const window = only(tray.electron, 'notice');
      expect(tray.electron.windows).toHaveLength(1);
      expect(window.webContents.payloads(CHANNELS.show).at(-1)).toEqual(notice('usb-20'));
    });

    it('different kinds get a window each', async () => {
      tray = await startTray();
      tray.agent.deliver(notice('usb-1'));
      tray.agent.deliver(notice('sw-1', 'software-blocked'));
      tray.agent.deliver(notice('c-1', 'logoff-countdown', { actions: ['still-here'] }));
      await flush();
      expect(tray.electron.windowsShowing('notice')).toHaveLength(2);
      expect(tray.electron.windowsShowing('countdown')).toHaveLength(1);
    });

    it('opens a window for one kind at most once per throttle period; the latest held back is shown when it ends', async () => {
      tray = await startTray({}, { throttleSeconds: 60 });
      tray.agent.deliver(notice('usb-1'));
      await flush();
      only(tray.electron, 'notice').close();
      tray.time.advance(10_000);
      tray.agent.deliver(notice('usb-2'));
      tray.agent.deliver(notice('usb-3'));
      await flush();
      expect(tray.electron.openWindows()).toHaveLength(0);
      // Another kind is not held back by this one.
      tray.agent.deliver(notice('sw-1', 'software-blocked'));
      await flush();
      expect(tray.electron.openWindows()).toHaveLength(1);
      only(tray.electron, 'notice').close();
      tray.time.advance(49_000);
      await flush();
      expect(tray.electron.openWindows()).toHaveLength(0);
      tray.time.advance(1_000);
      await flush();
      expect(only(tray.electron, 'notice').webContents.payloads(CHANNELS.show)).toEqual([notice('usb-3')]);
      expect(tray.electron.windows).toHaveLength(3);
    });

    it('a notice withdrawn while held back is never shown', async () => {
      tray = await startTray();
      tray.agent.deliver(notice('usb-1'));
      await flush();
      only(tray.electron, 'notice').close();
      tray.agent.deliver(notice('usb-2'));
      tray.agent.deliver({ v: 1, type: 'tray.withdraw', noticeId: 'usb-2' });
      tray.time.advance(120_000);
      await flush();
      expect(tray.electron.openWindows()).toHaveLength(0);
    });

    it('does not hold back a logoff countdown, a login limit or an agreement', async () => {
      tray = await startTray();
      for (const kind of ['logoff-countdown', 'login-limit', 'aup-agreement'] as const) {
        tray.agent.deliver(notice(`${kind}-1`, kind));
        await flush();
        tray.electron.openWindows()[0]!.close();
        tray.agent.deliver(notice(`${kind}-2`, kind));
        await flush();
        expect(tray.electron.openWindows()).toHaveLength(1);
        expect(tray.electron.openWindows()[0]!.webContents.payloads(CHANNELS.show)).toEqual([notice(`${kind}-2`, kind)]);
        tray.electron.openWindows()[0]!.close();
      }
    });

    it('a withdrawal closes the window showing that notice, and only that one', async () => {
      tray = await startTray();
      tray.agent.deliver(notice('usb-1'));
      tray.agent.deliver(notice('sw-1', 'software-blocked'));
      await flush();
      tray.agent.deliver({ v: 1, type: 'tray.withdraw', noticeId: 'usb-1' });
      expect(tray.electron.openWindows()).toHaveLength(1);
      expect(tray.electron.openWindows()[0]!.webContents.payloads(CHANNELS.show)).toEqual([notice('sw-1', 'software-blocked')]);
      // A withdrawal of a notice the window no longer shows leaves it alone.
      tray.agent.deliver(notice('sw-2', 'software-blocked'));
      tray.agent.deliver({ v: 1, type: 'tray.withdraw', noticeId: 'sw-1' });
      expect(tray.electron.openWindows()).toHaveLength(1);
    });
  });

  describe('what the windows send', () => {
    async function withNotice(n: TrayNotice = notice('usb-1', 'usb-blocked', { actions: ['dismiss', 'ask-permission', 'enter-code'] })) {
      tray = await startTray();
      tray.agent.deliver(n);
      await flush();
      return only(tray.electron, WINDOW_FOR_KIND[n.kind]);
    }

    it('an answer reaches the agent as tray.answer with the same fields', async () => {
      const window = await withNotice();
      tray.electron.sendFromPage(window.webContents, CHANNELS.answer, { noticeId: 'usb-1', action: 'ask-permission', text: 'For my homework' });
      tray.electron.sendFromPage(window.webContents, CHANNELS.answer, { noticeId: 'usb-1', action: 'enter-code', target: 'K7Q2-9XWD' });
      expect(tray.agent.sent).toEqual([
        { v: 1, type: 'tray.answer', noticeId: 'usb-1', action: 'ask-permission', text: 'For my homework' },
        { v: 1, type: 'tray.answer', noticeId: 'usb-1', action: 'enter-code', target: 'K7Q2-9XWD' },
      ]);
      expect(window.destroyed).toBe(false);
    });

    it('"dismiss" is passed on and closes the window', async () => {
      const window = await withNotice();
      tray.electron.sendFromPage(window.webContents, CHANNELS.answer, { noticeId: 'usb-1', action: 'dismiss' });
      expect(tray.agent.sent).toEqual([{ v: 1, type: 'tray.answer', noticeId: 'usb-1', action: 'dismiss' }]);
      expect(window.destroyed).toBe(true);
    });

    it('ignores messages from a sender that is not one of our windows', async () => {
      await withNotice();
      const stranger = new ElectronStandIn().api;
      const foreign = new stranger.BrowserWindow({ webPreferences: {} as never });
      tray.electron.sendFromPage(foreign.webContents, CHANNELS.answer, { noticeId: 'usb-1', action: 'ask-permission' });
      tray.electron.sendFromPage(foreign.webContents, CHANNELS.report, { kind: 'virus', text: 'help' });
      tray.electron.sendFromPage(foreign.webContents, CHANNELS.close);
      tray.agent.deliver(status('protected', { policyUrl: 'https://school.example/p' }));
      tray.electron.sendFromPage(foreign.webContents, CHANNELS.openPolicy);
      expect(tray.agent.sent).toEqual([]);
      expect(tray.electron.openWindows()).toHaveLength(1);
      expect(tray.electron.openedExternally).toEqual([]);
    });

    it('ignores a closed window, an answer to another notice, an action the notice does not offer, and malformed answers', async () => {
      const window = await withNotice();
      const send = (raw: unknown) => tray.electron.sendFromPage(window.webContents, CHANNELS.answer, raw);
      send({ noticeId: 'usb-other', action: 'ask-permission' });
      send({ noticeId: 'usb-1', action: 'agree' });
      send({ noticeId: 'usb-1', action: 'format-disk' });
      send({ noticeId: 'usb-1', action: 'ask-permission', text: 'x'.repeat(1001) });
      send({ noticeId: '<img src=x>', action: 'dismiss' });
      send('dismiss');
      send(null);
      expect(tray.agent.sent).toEqual([]);
      const contents = window.webContents;
      window.close();
      tray.electron.sendFromPage(contents, CHANNELS.answer, { noticeId: 'usb-1', action: 'ask-permission' });
      expect(tray.agent.sent).toEqual([]);
    });

    it('signs out another session only if the notice offered it', async () => {
      const window = await withNotice(
        notice('limit-1', 'login-limit', {
          actions: ['sign-out-here', 'sign-out-other'],
          sessions: [{ sessionId: 'sess-9', hostname: 'LAB-PC-12', since: '2025-01-06T08:10:00Z' }],
        }),
      );
      tray.electron.sendFromPage(window.webContents, CHANNELS.answer, { noticeId: 'limit-1', action: 'sign-out-other', target: 'sess-1' });
      tray.electron.sendFromPage(window.webContents, CHANNELS.answer, { noticeId: 'limit-1', action: 'sign-out-other', target: 'sess-9' });
      expect(tray.agent.sent).toEqual([{ v: 1, type: 'tray.answer', noticeId: 'limit-1', action: 'sign-out-other', target: 'sess-9' }]);
    });

    it('a report reaches the agent as tray.report, with an id of its own', async () => {
      tray = await startTray();
      tray.electron.tray.click(MENU_LABELS.report);
      await flush();
      const window = only(tray.electron, 'report');
      tray.electron.sendFromPage(window.webContents, CHANNELS.report, { kind: 'virus', text: 'A window keeps saying I won a prize' });
      tray.electron.sendFromPage(window.webContents, CHANNELS.report, { kind: 'nonsense', text: 'x' });
      expect(tray.agent.sent).toEqual([
        { v: 1, type: 'tray.report', kind: 'virus', text: 'A window keeps saying I won a prize', reportId: expect.stringMatching(/^[0-9a-f-]{36}$/) },
      ]);
    });

    it('sends a report again until the agent acknowledges it: on reconnecting, and every 30 s while connected', async () => {
      // Arrange
      tray = await startTray();
      tray.electron.tray.click(MENU_LABELS.report);
      await flush();
      const window = only(tray.electron, 'report');
      tray.electron.sendFromPage(window.webContents, CHANNELS.report, { kind: 'broken', text: 'The printer says error 5' });
      tray.electron.sendFromPage(window.webContents, CHANNELS.report, { kind: 'virus', text: 'My files are locked' });
      const reports = () => tray.agent.sent.filter((m) => m.type === 'tray.report');
      const [printer, virus] = reports() as Array<{ reportId: string }>;

      // Act: the agent acknowledges one; the connection drops and comes back
      tray.agent.deliver({ v: 1, type: 'tray.report.ack', reportId: printer!.reportId, outcome: 'recorded' });
      tray.agent.setStatus('disconnected');
      tray.agent.setStatus('connected');

      // Assert: only the unacknowledged one is sent again, under the same id
      expect(reports().slice(2)).toEqual([expect.objectContaining({ kind: 'virus', reportId: virus!.reportId })]);
      tray.time.advance(30_000);
      expect(reports().slice(3)).toEqual([expect.objectContaining({ kind: 'virus', reportId: virus!.reportId })]);
      tray.agent.deliver({ v: 1, type: 'tray.report.ack', reportId: virus!.reportId, outcome: 'throttled' });
      tray.time.advance(60_000);
      tray.agent.setStatus('disconnected');
      tray.agent.setStatus('connected');
      expect(reports()).toHaveLength(4);
    });

    it('keeps a report made while the agent is away and sends it once the agent is back', async () => {
      tray = await startTray();
      tray.electron.tray.click(MENU_LABELS.report);
      await flush();
      const window = only(tray.electron, 'report');
      tray.agent.setStatus('disconnected');
      tray.electron.sendFromPage(window.webContents, CHANNELS.report, { kind: 'upsetting', text: 'A scary picture' });
      expect(tray.agent.sent).toEqual([]);
      expect(tray.electron.notifications).toEqual([expect.objectContaining({ title: 'Your report will be passed on', shown: true })]);
      tray.agent.setStatus('connected');
      expect(tray.agent.sent).toEqual([expect.objectContaining({ type: 'tray.report', kind: 'upsetting', text: 'A scary picture' })]);
    });

    it('tells the person when an answer could not reach the agent', async () => {
      const window = await withNotice();
      tray.agent.setStatus('disconnected');
      tray.electron.sendFromPage(window.webContents, CHANNELS.answer, { noticeId: 'usb-1', action: 'dismiss' });
      expect(tray.agent.sent).toEqual([]);
      expect(tray.electron.notifications).toEqual([expect.objectContaining({ title: 'That did not get through', shown: true })]);
      expect(window.destroyed).toBe(false);
    });

    it("close closes the sending window; openPolicy opens the agent's address", async () => {
      const window = await withNotice();
      tray.agent.deliver(status('protected', { policyUrl: 'https://school.example/ict-policy' }));
      tray.electron.sendFromPage(window.webContents, CHANNELS.openPolicy, 'https://evil.example/');
      expect(tray.electron.openedExternally).toEqual(['https://school.example/ict-policy']);
      tray.electron.sendFromPage(window.webContents, CHANNELS.close);
      expect(window.destroyed).toBe(true);
    });

    it('the tray\'s own "how to ask" notice is dismissed locally, never sent to the agent', async () => {
      tray = await startTray();
      tray.electron.tray.click(MENU_LABELS.askPermission);
      await flush();
      const window = only(tray.electron, 'notice');
      const shown = window.webContents.payloads(CHANNELS.show)[0] as TrayNotice;
      expect(shown.kind).toBe('information');
      tray.electron.sendFromPage(window.webContents, CHANNELS.answer, { noticeId: shown.noticeId, action: 'dismiss' });
      expect(tray.agent.sent).toEqual([]);
      expect(window.destroyed).toBe(true);
    });
  });

  describe('idle time', () => {
    it('is reported every 30 seconds while connected', async () => {
      tray = await startTray();
      tray.electron.idleSeconds = 12.7;
      tray.time.advance(29_999);
      expect(tray.agent.sent).toEqual([]);
      tray.time.advance(1);
      expect(tray.agent.sent).toEqual([{ v: 1, type: 'tray.idle', idleSeconds: 12 }]);
      tray.agent.setStatus('disconnected');
      tray.time.advance(30_000);
      tray.agent.setStatus('connected');
      tray.electron.idleSeconds = 95;
      tray.time.advance(30_000);
      expect(tray.agent.sent).toEqual([
        { v: 1, type: 'tray.idle', idleSeconds: 12 },
        { v: 1, type: 'tray.idle', idleSeconds: 95 },
      ]);
    });

    it('is reported every 5 seconds while a logoff countdown is up, so that moving the mouse stops it in time', async () => {
      tray = await startTray();
      tray.electron.idleSeconds = 880;
      tray.agent.deliver(notice('logoff-3', 'logoff-countdown', { deadline: '2026-11-23T10:01:00.000Z', actions: ['still-here'] }));
      tray.time.advance(5_000);
      tray.electron.idleSeconds = 0;
      tray.time.advance(5_000);
      expect(tray.agent.sent).toEqual([
        { v: 1, type: 'tray.idle', idleSeconds: 880 },
        { v: 1, type: 'tray.idle', idleSeconds: 0 },
      ]);
      tray.agent.deliver({ v: 1, type: 'tray.withdraw', noticeId: 'logoff-3' });
      tray.time.advance(25_000);
      expect(tray.agent.sent).toHaveLength(2);
    });

    it('stops with the tray', async () => {
      tray = await startTray();
      tray.app.stop();
      expect(tray.time.timerCount).toBe(0);
      expect(tray.agent.stopped).toBe(1);
      expect(tray.electron.tray.destroyed).toBe(true);
    });
  });

  describe('the icon', () => {
    const icon = (state: string) => join(ICONS, `${state}.png`);

    it("follows the agent's status and shows disconnected while the agent cannot be reached", async () => {
      tray = await startTray();
      const t = tray.electron.tray;
      expect(t.images.at(-1)).toBe(icon('protected'));
      tray.agent.deliver(status('attention'));
      expect(t.images.at(-1)).toBe(icon('attention'));
      expect(t.toolTips.at(-1)).toBe(TOOLTIPS.attention);
      tray.agent.deliver(status('disconnected'));
      expect(t.images.at(-1)).toBe(icon('disconnected'));
      tray.agent.deliver(status('protected'));
      expect(t.images.at(-1)).toBe(icon('protected'));
      expect(t.toolTips.at(-1)).toBe(TOOLTIPS.protected);
      tray.agent.setStatus('disconnected');
      expect(t.images.at(-1)).toBe(icon('disconnected'));
      expect(t.toolTips.at(-1)).toBe(TOOLTIPS.disconnected);
      tray.agent.setStatus('connected');
      expect(t.images.at(-1)).toBe(icon('protected'));
    });

    it('starts disconnected when the agent is not there yet, and the status window says so', async () => {
      const electron = new ElectronStandIn();
      const agent = new FakeAgent();
      agent.status = 'disconnected';
      const time = new FakeTime();
      const app = new TrayApp({
        electron: electron.api,
        agent,
        rendererDir: RENDERER,
        preloadPath: PRELOAD,
        iconDir: ICONS,
        signOut: () => undefined,
        timers: time,
      });
      tray = { electron, agent, time, app, started: await app.start(), signOuts: [] };
      expect(electron.tray.initialImage).toBe(icon('disconnected'));
      expect(electron.tray.toolTips.at(-1)).toBe(TOOLTIPS.disconnected);
      electron.tray.click(MENU_LABELS.status);
      await flush();
      const window = only(electron, 'status');
      expect((window.webContents.payloads(CHANNELS.show)[0] as TrayStatus).state).toBe('disconnected');
      agent.setStatus('connected');
      agent.deliver(status('attention'));
      expect((window.webContents.payloads(CHANNELS.show).at(-1) as TrayStatus).state).toBe('attention');
    });
  });
});

describe('the preload', () => {
  function standInPreload() {
    const exposed = new Map<string, unknown>();
    const sent: Array<{ channel: string; args: unknown[] }> = [];
    const listeners = new Map<string, Array<(event: unknown, ...args: unknown[]) => void>>();
    const electron: PreloadElectron = {
      contextBridge: { exposeInMainWorld: (key, api) => exposed.set(key, api) },
      ipcRenderer: {
        send: (channel, ...args) => sent.push({ channel, args }),
        on: (channel, listener) => listeners.set(channel, [...(listeners.get(channel) ?? []), listener]),
      },
    };
    const fromMain = (channel: string, ...args: unknown[]) => {
      for (const l of listeners.get(channel) ?? []) l({ sender: 'the-ipc-event' }, ...args);
    };
    exposeInvigilator(electron);
    return { exposed, sent, listeners, fromMain };
  }

  it('uses the same channel names as the main process', () => {
    expect(PRELOAD_CHANNELS).toEqual(CHANNELS);
  });

  it('exposes window.invigilator with exactly the five functions of the contract', () => {
    const { exposed } = standInPreload();
    expect([...exposed.keys()]).toEqual(['invigilator']);
    const api = exposed.get('invigilator') as Record<string, unknown>;
    expect(Object.keys(api).sort()).toEqual(['answer', 'close', 'onShow', 'openPolicy', 'report']);
    expect(Object.isFrozen(api)).toBe(true);
  });

  it('listens only on the show channel, and passes the payload without the IPC event', () => {
    const { exposed, listeners, fromMain } = standInPreload();
    expect([...listeners.keys()]).toEqual([CHANNELS.show]);
    const api = exposed.get('invigilator') as { onShow(cb: (...args: unknown[]) => void): void };
    fromMain(CHANNELS.show, { first: true });
    const seen: unknown[][] = [];
    api.onShow((...args) => seen.push(args));
    fromMain(CHANNELS.show, { second: true });
    expect(seen).toEqual([[{ first: true }], [{ second: true }]]);
  });

  it('sends each call on its own allow-listed channel', () => {
    const { exposed, sent } = standInPreload();
    const api = exposed.get('invigilator') as {
      answer(...a: unknown[]): void;
      report(...a: unknown[]): void;
      close(): void;
      openPolicy(): void;
    };
    api.answer('usb-1', 'ask-permission', 'For my homework');
    api.answer('limit-1', 'sign-out-other', undefined, 'sess-9');
    api.report('upsetting', 'A scary picture');
    api.close();
    api.openPolicy();
    // Not strings, or not a report kind: never sent.
    api.answer({ toString: () => 'usb-1' }, 'dismiss');
    api.report('exfiltrate', 'x');
    api.report('broken', 42);
    expect(sent).toEqual([
      { channel: CHANNELS.answer, args: [{ noticeId: 'usb-1', action: 'ask-permission', text: 'For my homework' }] },
      { channel: CHANNELS.answer, args: [{ noticeId: 'limit-1', action: 'sign-out-other', target: 'sess-9' }] },
      { channel: CHANNELS.report, args: [{ kind: 'upsetting', text: 'A scary picture' }] },
      { channel: CHANNELS.close, args: [] },
      { channel: CHANNELS.openPolicy, args: [] },
    ]);
    expect(new Set(sent.map((s) => s.channel)).size).toBe(4);
    for (const s of sent) expect(FROM_WINDOW_CHANNELS).toContain(s.channel);
  });
});

describe('where the tray finds the agent', () => {
  it('uses a per-user socket on Linux and macOS, a per-session pipe on Windows, and the override when set', () => {
    expect(traySocketPath({ platform: 'linux', env: {}, uid: 1001 })).toBe('/run/invigilator/trays/1001.sock');
    expect(traySocketPath({ platform: 'darwin', env: {}, uid: 501 })).toBe('/run/invigilator/trays/501.sock');
    expect(traySocketPath({ platform: 'win32', env: {}, windowsSessionId: 2 })).toBe('\\\\.\\pipe\\invigilator-tray-2');
    expect(traySocketPath({ platform: 'linux', env: { INVIGILATOR_TRAY_SOCKET: '/tmp/t.sock' }, uid: 1001 })).toBe('/tmp/t.sock');
    expect(() => traySocketPath({ platform: 'win32', env: {} })).toThrow(/session id/);
    expect(() => traySocketPath({ platform: 'linux', env: {} })).toThrow(/user id/);
  });

  it("signs out with the OS's own command", () => {
    expect(signOutCommand({ platform: 'linux', env: { XDG_SESSION_ID: '7' }, uid: 1001 })).toEqual({ file: 'loginctl', args: ['terminate-session', '7'] });
    expect(signOutCommand({ platform: 'linux', env: { XDG_SESSION_ID: '7; rm -rf /' }, uid: 1001 })).toEqual({
      file: 'loginctl',
      args: ['terminate-user', '1001'],
    });
    expect(signOutCommand({ platform: 'win32', env: {} })).toEqual({ file: 'shutdown.exe', args: ['/l'] });
    expect(parseTasklistSession('"electron.exe","4242","Console","1","81,204 K"\r\n')).toBe(1);
    expect(parseTasklistSession('INFO: No tasks are running which match the specified criteria.')).toBeUndefined();
  });
});
