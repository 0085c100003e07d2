/**
 * The tray's windows, rendered in Debian's Chromium (Electron's engine) from the
 * built files in dist/tray-ui/renderer, served over loopback HTTP so that the
 * pages' Content-Security-Policy ('self') applies as it will in the app. A
 * stand-in `window.invigilator` records every call the page makes, and lets a
 * test deliver a payload as the preload will.
 *
 * Writes one screenshot per window to docs/screenshots/.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { APP_HOST, APP_SCHEME, serveRendererRequest } from '../../tray-ui/main/app-scheme';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { trayAnswer, trayNotice, trayReport, trayStatus, type TrayNotice } from '../../shared/protocol/agent-tray';
import type { NoticeKind, NoticePayload, StatusPayload } from '../../tray-ui/renderer/api';

// The functions passed to page.evaluate run in Chromium; the test's own tsconfig has no DOM lib,
// so the few page globals they use are declared here, for this file only.
declare const window: unknown;
declare const document: { activeElement: unknown; querySelector(selector: string): unknown; body: { innerHTML: string }; title: string };
declare function getComputedStyle(element: unknown): { outlineStyle: string };

// ---- the renderer's mirrored payload types stay equal to shared/ (checked by `npm run typecheck`) ----
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _noticeTypeMatches: Same<NoticePayload, TrayNotice> = true;
const _statusTypeMatches: Same<StatusPayload, ReturnType<typeof trayStatus.parse>> = true;
void _noticeTypeMatches;
void _statusTypeMatches;

const CHROMIUM = '/usr/bin/chromium';
const ROOT = join(__dirname, '../..');
const DIST = join(ROOT, 'dist/tray-ui/renderer');
const SHOTS = join(ROOT, 'docs/screenshots');
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const HOSTILE = '<img src=x onerror=alert(1)>';
/** The pages' clock: Monday 23 November 2026, 09:40 in London. */
const NOW = new Date('2026-11-23T09:40:00.000Z');
const WAIT = { timeout: 5_000 };
/** Each page's own policy. frame-ancestors works only as a header (Chromium ignores it in <meta>, with a console error); the scheme handler sends it. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

const ci = process.env.CI === 'true';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !ci)
  console.log(`test/tray-ui/renderer.test.ts skipped: ${CHROMIUM} is missing (apt-get install chromium); under CI=true it fails instead.`);
const describeChromium = haveChromium || ci ? describe : describe.skip;

// ---- samples -------------------------------------------------------------------

const clause = {
  id: 'bps-connections-encrypted',
  document: 'Basildon Primary ICT Acceptable Use Policy',
  section: '3.7',
  quote: 'Encrypted USB memory sticks that have been approved by the School Network Manager may be used.',
};

const usbNotice: NoticePayload = {
  v: 1,
  type: 'tray.notice',
  noticeId: 'usb-n-1',
  kind: 'usb-blocked',
  title: 'This memory stick is not locked',
  body: "The school only allows memory sticks that are locked with a password (encrypted), to keep everyone's work safe. This one is not, so it has been stopped. If you need it, you can ask the School Network Manager.",
  clause,
  subject: 'SanDisk Cruzer Blade (8 GB)',
  actions: ['dismiss', 'ask-permission', 'enter-code'],
};

const status: StatusPayload = {
  v: 1,
  type: 'tray.status',
  state: 'protected',
  policyName: 'Basildon Primary',
  policyRevision: 4,
  connectedSince: '2026-11-23T09:15:00.000Z',
  lastEvent: { type: 'A memory stick was stopped', time: '2026-11-23T09:32:00.000Z' },
  policyUrl: 'https://school.example/ict-policy',
};

const countdown: NoticePayload = {
  v: 1,
  type: 'tray.notice',
  noticeId: 'logoff-n-1',
  kind: 'logoff-countdown',
  title: 'Are you still there?',
  body: 'Nobody has used this computer for a while. To keep your work safe, it will sign you out soon. If you are still using it, press “I’m still here”.',
  clause: {
    id: 'bps-idle-logoff',
    document: 'Basildon Primary ICT Acceptable Use Policy',
    section: '3.2',
    quote: 'Users must log off when they leave a computer.',
  },
  actions: ['still-here'],
  deadline: '2026-11-23T09:42:00.000Z',
};

const loginLimit: NoticePayload = {
  v: 1,
  type: 'tray.notice',
  noticeId: 'login-n-1',
  kind: 'login-limit',
  title: 'You are signed in on too many computers',
  body: 'You can only be signed in on two computers at once. Sign out of one of them to carry on here.',
  clause: {
    id: 'bps-one-login',
    document: 'Basildon Primary ICT Acceptable Use Policy',
    section: '3.1',
    quote: 'Users must only be logged on to one computer at a time.',
  },
  actions: ['sign-out-here', 'sign-out-other'],
  sessions: [
    { sessionId: 's-ict-07', hostname: 'ICT-SUITE-07', since: '2026-11-23T08:55:00.000Z' },
    { sessionId: 's-lib-02', hostname: 'LIBRARY-02', since: '2026-11-22T15:10:00.000Z' },
  ],
};

const agreement: NoticePayload = {
  v: 1,
  type: 'tray.notice',
  noticeId: 'aup-n-1',
  kind: 'aup-agreement',
  title: 'Our school’s computer rules',
  body: 'I will only use the computers for school work.\nI will keep my password secret.\nI will only use memory sticks the school has said are safe.\nI will tell a teacher if I see anything that upsets me.\nI know the school can see what I do on its computers.',
  clause: {
    id: 'bps-aup',
    document: 'Basildon Primary ICT Acceptable Use Policy',
    section: '2',
    quote: 'All users must agree to this policy before using the school’s computers.',
  },
  actions: ['agree', 'decline'],
};

// ---- server and browser -----------------------------------------------------------

/** The pages come through the tray's own scheme handler (tray-ui/main/app-scheme.ts), so they are tested with the headers Electron will give them. */
function serve(): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/__test__/axe.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(AXE);
      return;
    }
    void serveRendererRequest(DIST, `${APP_SCHEME}://${APP_HOST}${url.pathname}`).then((answer) =>
      res.writeHead(answer.status, answer.headers).end(answer.body),
    );
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** The preload's stand-in: records calls in `window.__calls`; `window.__show(payload)` plays the main process. */
function standIn(): void {
  const w = window as unknown as Record<string, unknown>;
  const calls: unknown[][] = [];
  let show: ((payload: unknown) => void) | undefined;
  w.__calls = calls;
  w.__show = (payload: unknown) => {
    if (!show) throw new Error('the window registered no onShow callback');
    show(payload);
  };
  w.invigilator = Object.freeze({
    onShow(callback: (payload: unknown) => void) {
      show = callback;
      w.__ready = true;
    },
    answer: (...args: unknown[]) => calls.push(['answer', ...args]),
    report: (...args: unknown[]) => calls.push(['report', ...args]),
    close: () => calls.push(['close']),
    openPolicy: () => calls.push(['openPolicy']),
  });
}

let browser: Browser;
let server: Server;
let base: string;
const contexts: BrowserContext[] = [];

interface Opened {
  page: Page;
  /** Alerts, confirms, prompts: there must be none. */
  dialogs: string[];
  /** Console errors (CSP violations among them) and uncaught exceptions. */
  errors: string[];
  calls(): Promise<unknown[][]>;
}

async function open(window: string, payload?: unknown, viewport = { width: 440, height: 400 }): Promise<Opened> {
  const context = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'Europe/London', deviceScaleFactor: 1, reducedMotion: 'reduce' });
  contexts.push(context);
  context.setDefaultTimeout(WAIT.timeout);
  await context.addInitScript(standIn);
  const page = await context.newPage();
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss().catch(() => undefined);
  });
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  // Paused before the page exists, so the page's timers and Date.now() move only when a test runs the clock:
  // a clock left running would count the seconds a busy machine takes to load the page. pauseAt cannot go
  // back in time, so the clock is installed a minute early and paused at NOW; every page starts from that.
  await page.clock.install({ time: NOW.getTime() - 60_000 });
  await page.clock.pauseAt(NOW);
  await page.goto(`${base}/${window}/index.html`, { waitUntil: 'load', ...WAIT });
  await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true, null, WAIT);
  if (payload !== undefined) await page.evaluate((p) => (window as unknown as { __show(p: unknown): void }).__show(p), payload);
  return { page, dialogs, errors, calls: () => page.evaluate(() => (window as unknown as { __calls: unknown[][] }).__calls) };
}

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true, animations: 'disabled', caret: 'hide' });
}

/** axe-core's violations of impact serious or critical, as "rule: target" lines. */
async function seriousViolations(page: Page): Promise<string[]> {
  // Served from the page's own origin, so the page's CSP lets it run.
  await page.addScriptTag({ url: '/__test__/axe.js' });
  const run = page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: { run(ctx: unknown, opts: object): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> };
      }
    ).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(' ')) }));
  });
  // axe yields to the page with setTimeout between its checks, and the page's clock is paused: move it on in
  // frame-sized steps until axe is done (one or two steps). At most 16 s of page time: short of any deadline here.
  let done = false;
  const finished = run.finally(() => (done = true));
  for (let step = 0; !done; step++) {
    if (step === 1000) throw new Error('axe did not finish in 16 s of page time');
    await page.clock.runFor(16);
  }
  const violations = await finished;
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.targets.join(', ')}`);
}

/** Presses Tab until `selector` has focus (at most 15 times), then returns whether it did. */
async function tabTo(page: Page, selector: string): Promise<boolean> {
  for (let i = 0; i < 15; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement === document.querySelector(s), selector)) return true;
  }
  return false;
}

/** The `tray.answer` a recorded answer() call becomes, checked against the shared schema. */
function asAnswer(call: unknown[]): unknown {
  const [, noticeId, action, text, target] = call;
  return trayAnswer.parse({
    v: 1,
    type: 'tray.answer',
    noticeId,
    action,
    ...(text !== undefined ? { text } : {}),
    ...(target !== undefined ? { target } : {}),
  });
}

const text = (page: Page, selector: string) => page.locator(selector).textContent();

describeChromium('tray windows in Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(join(DIST, 'notice/index.html'))) throw new Error('dist/tray-ui/renderer is not built: run `npm run build` first');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-background-networking'], timeout: 30_000 });
    server = await serve();
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 60_000);

  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close().catch(() => undefined)));
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  });

  it('uses sample payloads the shared schema accepts', () => {
    expect(() => trayNotice.parse(usbNotice)).not.toThrow();
    expect(() => trayStatus.parse(status)).not.toThrow();
    for (const notice of [countdown, loginLimit, agreement]) expect(() => trayNotice.parse(notice)).not.toThrow();
  });

  it('every window carries the strict Content-Security-Policy, lang="en" and a main landmark', () => {
    for (const window of ['notice', 'status', 'report', 'countdown', 'login-limit', 'agreement']) {
      const html = readFileSync(join(ROOT, 'tray-ui/renderer', window, 'index.html'), 'utf8');
      expect(html).toContain(`content="${CSP}"`);
      expect(html).toContain('<html lang="en">');
      expect(html).toContain('<main>');
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
      expect(html).not.toMatch(/\sstyle=|\son[a-z]+=/);
    }
  });

  // ---- notice -----------------------------------------------------------------------

  describe('notice', () => {
    it('shows title, body, the device as text and the clause behind "Why?"', async () => {
      const { page, errors } = await open('notice', usbNotice);
      expect(await text(page, 'h1')).toBe(usbNotice.title);
      expect(await text(page, '.body')).toBe(usbNotice.body);
      expect(await text(page, '#subject')).toBe(usbNotice.subject);
      expect(await page.locator('#clause-quote').isVisible()).toBe(false);
      await page.getByText('Why?').click();
      expect(await text(page, '#clause-document')).toBe(clause.document);
      expect(await text(page, '#clause-section')).toBe(clause.section);
      expect(await text(page, '#clause-quote')).toBe(clause.quote);
      expect(await page.locator('#buttons button').allTextContents()).toEqual(['OK', 'Ask for permission', 'I have a code']);
      expect(await page.locator('.header svg[aria-hidden="true"]').count()).toBe(1);
      await screenshot(page, 'notice');
      expect(errors).toEqual([]);
    });

    it.each<[NoticeKind, string]>([
      ['usb-blocked', 'Memory sticks cannot be used here'],
      ['device-blocked', 'This device needs permission'],
      ['software-blocked', 'This program cannot be used here'],
      ['information', 'That code did not work'],
      ['permission-decision', 'You can use your memory stick'],
      ['virus-warning', 'There might be a virus'],
    ])('shows a %s notice with its picture', async (kind, title) => {
      const { page, errors } = await open('notice', { ...usbNotice, kind, title, actions: ['dismiss'] });
      expect(await text(page, 'h1')).toBe(title);
      expect(await page.locator('.header svg[aria-hidden="true"] rect').first().getAttribute('fill')).toMatch(/^#/);
      expect(errors).toEqual([]);
    });

    it('OK answers dismiss and closes the window', async () => {
      const { page, calls } = await open('notice', usbNotice);
      await page.getByRole('button', { name: 'OK' }).click();
      expect(await calls()).toEqual([['answer', 'usb-n-1', 'dismiss'], ['close']]);
    });

    it('without a dismiss action, OK only closes the window', async () => {
      const { page, calls } = await open('notice', { ...usbNotice, actions: [] });
      await page.getByRole('button', { name: 'OK' }).click();
      expect(await calls()).toEqual([['close']]);
    });

    it('"Ask for permission" reveals a labelled box, and Send answers ask-permission with the typed reason', async () => {
      const { page, calls } = await open('notice', usbNotice);
      const ask = page.getByRole('button', { name: 'Ask for permission' });
      expect(await ask.getAttribute('aria-expanded')).toBe('false');
      await ask.click();
      expect(await ask.getAttribute('aria-expanded')).toBe('true');
      const reason = page.getByLabel('Tell a grown-up why you need it');
      expect(await reason.evaluate((e) => e === document.activeElement)).toBe(true);
      await page.getByRole('button', { name: 'Send' }).click();
      expect(await page.locator('#ask-error').isVisible()).toBe(true);
      expect(await calls()).toEqual([]);
      await reason.fill('  I need my homework for Year 5  ');
      await page.getByRole('button', { name: 'Send' }).click();
      const made = await calls();
      expect(made).toEqual([['answer', 'usb-n-1', 'ask-permission', 'I need my homework for Year 5']]);
      expect(asAnswer(made[0]!)).toMatchObject({ action: 'ask-permission', text: 'I need my homework for Year 5' });
      expect(await text(page, '#result')).toContain('Sent');
      expect(await page.locator('#action-ask-permission').count()).toBe(0);
    });

    it('"I have a code" reveals an input, and Check answers enter-code with the code as target', async () => {
      const { page, calls } = await open('notice', usbNotice);
      await page.getByRole('button', { name: 'I have a code' }).click();
      const input = page.getByLabel('Type the code a grown-up gave you');
      await input.fill('<b>bad</b>');
      await page.getByRole('button', { name: 'Check' }).click();
      expect(await page.locator('#code-error').isVisible()).toBe(true);
      expect(await input.getAttribute('aria-invalid')).toBe('true');
      expect(await calls()).toEqual([]);
      await input.fill(' K7QF-2MXA ');
      await input.press('Enter');
      const made = await calls();
      expect(made).toEqual([['answer', 'usb-n-1', 'enter-code', undefined, 'K7QF-2MXA']]);
      expect(asAnswer(made[0]!)).toMatchObject({ action: 'enter-code', target: 'K7QF-2MXA' });
      expect(await text(page, '#result')).toBe('Checking the code…');
    });

    it('a hostile device name appears as text and runs nothing', async () => {
      const hostile: NoticePayload = { ...usbNotice, noticeId: 'usb-n-2', kind: 'device-blocked', title: 'This device needs permission', subject: HOSTILE };
      hostile.clause = { ...clause, quote: `${HOSTILE} ${clause.quote}` };
      expect(() => trayNotice.parse(hostile)).not.toThrow();
      const { page, dialogs, errors } = await open('notice', hostile);
      await page.getByText('Why?').click();
      expect(await text(page, '#subject')).toBe(HOSTILE);
      expect(await text(page, '#clause-quote')).toBe(hostile.clause.quote);
      expect(await page.locator('img').count()).toBe(0);
      expect(await page.evaluate(() => document.body.innerHTML)).toContain('&lt;img src=x onerror=alert(1)&gt;');
      // Give a loaded <img>'s onerror every chance to fire.
      await page.clock.runFor(1000);
      await page.waitForTimeout(300);
      await screenshot(page, 'notice-hostile-name');
      expect(dialogs).toEqual([]);
      expect(errors).toEqual([]);
    });

    it('a payload that is not a notice for this window shows "Something went wrong" and none of it', async () => {
      const { page } = await open('notice', { ...usbNotice, kind: 'login-limit' });
      expect(await page.getByRole('alert').textContent()).toContain('Something went wrong');
      expect(await page.locator('#content').isVisible()).toBe(false);
      const again = await open('notice', { ...usbNotice, extra: '<script>' });
      expect(await again.page.getByRole('alert').textContent()).toContain('Something went wrong');
      const long = await open('notice', { ...usbNotice, subject: 'x'.repeat(501) });
      expect(await long.page.locator('#content').isVisible()).toBe(false);
    });

    it('has no serious accessibility violations, with "Why?" and the request box open', async () => {
      const { page } = await open('notice', usbNotice);
      expect(await seriousViolations(page)).toEqual([]);
      await page.getByText('Why?').click();
      await page.getByRole('button', { name: 'Ask for permission' }).click();
      expect(await seriousViolations(page)).toEqual([]);
    });

    it('works from the keyboard: Tab reaches OK, Enter answers', async () => {
      const { page, calls } = await open('notice', usbNotice);
      expect(await tabTo(page, '#action-dismiss')).toBe(true);
      const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      expect(outline).not.toBe('none');
      await page.keyboard.press('Enter');
      expect(await calls()).toEqual([['answer', 'usb-n-1', 'dismiss'], ['close']]);
    });

    it('works from the keyboard: Tab to "Ask for permission", Enter, type, Enter on Send', async () => {
      const { page, calls } = await open('notice', usbNotice);
      expect(await tabTo(page, '#action-ask-permission')).toBe(true);
      await page.keyboard.press('Enter');
      await page.keyboard.type('For my project');
      expect(await tabTo(page, '#ask-send')).toBe(true);
      await page.keyboard.press('Enter');
      expect(await calls()).toEqual([['answer', 'usb-n-1', 'ask-permission', 'For my project']]);
    });
  });

  // ---- status -----------------------------------------------------------------------

  describe('status', () => {
    it('shows protected, the policy name and version, connected since and the last event', async () => {
      const { page, errors } = await open('status', status);
      expect(await text(page, 'h1')).toBe('This computer is protected');
      expect(await text(page, '#policy')).toBe('Basildon Primary (version 4)');
      expect(await text(page, '#connected')).toBe('Since today at 9:15');
      expect(await text(page, '#last-event')).toBe('A memory stick was stopped, today at 9:32');
      expect(await page.locator('.header svg[aria-hidden="true"]').count()).toBe(1);
      await screenshot(page, 'status');
      expect(errors).toEqual([]);
    });

    it.each([
      ['attention', 'This computer needs a grown-up to look at it'],
      ['disconnected', 'This computer is not connected to the school'],
    ])('shows %s in words', async (state, words) => {
      const { page } = await open('status', { ...status, state, connectedSince: null, lastEvent: null });
      expect(await text(page, 'h1')).toBe(words);
      expect(await text(page, '#connected')).toBe('Not connected now');
      expect(await text(page, '#last-event')).toBe('Nothing yet');
    });

    it('says the rules are not known yet before the first status (empty policy name)', async () => {
      const { page } = await open('status', { ...status, state: 'disconnected', policyName: '', policyRevision: 0, connectedSince: null, lastEvent: null });
      expect(await text(page, '#policy')).toBe('Not known yet');
    });

    it('the policy button calls openPolicy, Close calls close', async () => {
      const { page, calls } = await open('status', status);
      await page.getByRole('button', { name: 'Read the school’s rules' }).click();
      await page.getByRole('button', { name: 'Close' }).click();
      expect(await calls()).toEqual([['openPolicy'], ['close']]);
    });

    it('hides the policy button when there is no policy address', async () => {
      const { policyUrl: _omit, ...rest } = status;
      const { page } = await open('status', rest);
      expect(await page.getByRole('button', { name: 'Read the school’s rules' }).count()).toBe(0);
    });

    it('a hostile policy name appears as text and runs nothing', async () => {
      const { page, dialogs, errors } = await open('status', { ...status, policyName: HOSTILE, lastEvent: { type: HOSTILE, time: status.connectedSince } });
      expect(await text(page, '#policy')).toBe(`${HOSTILE} (version 4)`);
      expect(await page.locator('img').count()).toBe(0);
      await page.waitForTimeout(300);
      expect(dialogs).toEqual([]);
      expect(errors).toEqual([]);
    });

    it('redraws when a newer status arrives, and refuses a malformed one', async () => {
      const { page } = await open('status', status);
      await page.evaluate((p) => (window as unknown as { __show(p: unknown): void }).__show(p), { ...status, state: 'disconnected', connectedSince: null });
      expect(await text(page, 'h1')).toBe('This computer is not connected to the school');
      await page.evaluate((p) => (window as unknown as { __show(p: unknown): void }).__show(p), { ...status, policyRevision: -1 });
      expect(await page.getByRole('alert').textContent()).toContain('Something went wrong');
    });

    it('has no serious accessibility violations, and Tab then Enter closes it', async () => {
      const { page, calls } = await open('status', status);
      expect(await seriousViolations(page)).toEqual([]);
      expect(await tabTo(page, '#close')).toBe(true);
      await page.keyboard.press('Enter');
      expect(await calls()).toEqual([['close']]);
    });
  });

  // ---- report -----------------------------------------------------------------------

  describe('report', () => {
    it('offers three kinds, each with a picture and words, and a box for what happened', async () => {
      const { page, errors } = await open('report', null);
      expect(await text(page, 'h1')).toBe('Tell a grown-up about a problem');
      expect(await page.getByRole('radio').count()).toBe(3);
      for (const name of ['Something is broken', 'I think there is a virus', 'Something upsetting is on the screen']) {
        expect(await page.getByRole('radio', { name }).count()).toBe(1);
      }
      expect(await page.locator('.kinds svg[aria-hidden="true"]').count()).toBe(3);
      expect(await page.getByLabel('Tell us what happened (you can leave this empty)').count()).toBe(1);
      await screenshot(page, 'report');
      expect(errors).toEqual([]);
    });

    it('Send reports the chosen kind and the typed words', async () => {
      const { page, calls } = await open('report', null);
      await page.getByRole('button', { name: 'Send' }).click();
      expect(await page.locator('#kind-error').isVisible()).toBe(true);
      expect(await calls()).toEqual([]);
      await page.getByRole('radio', { name: 'I think there is a virus' }).check();
      await page.getByLabel('Tell us what happened (you can leave this empty)').fill('A window keeps saying I won a prize');
      await page.getByRole('button', { name: 'Send' }).click();
      const made = await calls();
      expect(made).toEqual([['report', 'virus', 'A window keeps saying I won a prize']]);
      expect(() => trayReport.parse({ v: 1, type: 'tray.report', kind: made[0]![1], text: made[0]![2] })).not.toThrow();
      expect(await text(page, '#result')).toContain('Stop using this computer');
      await page.getByRole('button', { name: 'Close' }).click();
      expect((await calls()).at(-1)).toEqual(['close']);
    });

    it('a new show starts afresh', async () => {
      const { page } = await open('report', null);
      await page.getByRole('radio', { name: 'Something is broken' }).check();
      await page.getByRole('button', { name: 'Send' }).click();
      await page.evaluate(() => (window as unknown as { __show(p: unknown): void }).__show(null));
      expect(await page.getByRole('radio', { name: 'Something is broken' }).isChecked()).toBe(false);
      expect(await page.getByRole('button', { name: 'Send' }).isVisible()).toBe(true);
    });

    it('has no serious accessibility violations', async () => {
      const { page } = await open('report', null);
      expect(await seriousViolations(page)).toEqual([]);
      await page.getByRole('button', { name: 'Send' }).click();
      expect(await seriousViolations(page)).toEqual([]);
    });

    it('works from the keyboard: arrow keys choose a kind, Tab reaches Send, Enter sends', async () => {
      const { page, calls } = await open('report', null);
      expect(await tabTo(page, '#kind-broken')).toBe(true);
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('Tab');
      await page.keyboard.type('Someone sent a nasty picture');
      expect(await tabTo(page, '#send')).toBe(true);
      await page.keyboard.press('Enter');
      expect(await calls()).toEqual([['report', 'upsetting', 'Someone sent a nasty picture']]);
    });
  });
  // ---- countdown --------------------------------------------------------------------

  describe('countdown', () => {
    const timer = (page: Page) => text(page, '#timer');
    const announced = (page: Page) => text(page, '#announce');

    it('counts down to the deadline every second, and speaks only now and then', async () => {
      const { page, errors } = await open('countdown', countdown);
      expect(await text(page, 'h1')).toBe(countdown.title);
      expect(await timer(page)).toBe('2:00');
      expect(await announced(page)).toBe('This computer will sign you out in 2 minutes.');
      expect(await page.locator('#timer').getAttribute('role')).toBe('timer');
      await screenshot(page, 'countdown');
      await page.clock.runFor(1000);
      expect(await timer(page)).toBe('1:59');
      expect(await announced(page)).toBe('This computer will sign you out in 2 minutes.');
      await page.clock.runFor(59_000);
      expect(await timer(page)).toBe('1:00');
      expect(await announced(page)).toBe('This computer will sign you out in 1 minute.');
      await page.clock.runFor(30_000);
      expect(await announced(page)).toBe('This computer will sign you out in 30 seconds.');
      await page.clock.runFor(30_000);
      expect(await timer(page)).toBe('0:00');
      expect(await announced(page)).toBe('Signing you out now.');
      expect(await page.getByRole('button', { name: 'I’m still here' }).count()).toBe(0);
      await page.clock.runFor(5_000);
      expect(await timer(page)).toBe('0:00');
      expect(errors).toEqual([]);
    });

    it('"I’m still here" answers still-here and keeps the window up', async () => {
      const { page, calls } = await open('countdown', countdown);
      await page.getByRole('button', { name: 'I’m still here' }).click();
      const made = await calls();
      expect(made).toEqual([['answer', 'logoff-n-1', 'still-here']]);
      expect(asAnswer(made[0]!)).toMatchObject({ action: 'still-here' });
      expect(await text(page, '#result')).toContain('still here');
    });

    it('offers no "I’m still here" when the policy does not, and restarts on a new deadline', async () => {
      const { page } = await open('countdown', { ...countdown, actions: [] });
      expect(await page.getByRole('button').count()).toBe(0);
      await page.evaluate((p) => (window as unknown as { __show(p: unknown): void }).__show(p), { ...countdown, deadline: '2026-11-23T09:45:00.000Z' });
      expect(await timer(page)).toBe('5:00');
      await page.clock.runFor(2000);
      expect(await timer(page)).toBe('4:58');
    });

    it('refuses a countdown without a deadline', async () => {
      const { deadline: _omit, ...rest } = countdown;
      const { page } = await open('countdown', rest);
      expect(await page.getByRole('alert').textContent()).toContain('Something went wrong');
    });

    it('has no serious accessibility violations, and Tab then Enter says "I’m still here"', async () => {
      const { page, calls } = await open('countdown', countdown);
      expect(await seriousViolations(page)).toEqual([]);
      expect(await tabTo(page, '#action-still-here')).toBe(true);
      await page.keyboard.press('Enter');
      expect(await calls()).toEqual([['answer', 'logoff-n-1', 'still-here']]);
    });
  });

  // ---- login-limit ------------------------------------------------------------------

  describe('login-limit', () => {
    it('lists the other computers and since when', async () => {
      const { page, errors } = await open('login-limit', loginLimit, { width: 440, height: 460 });
      expect(await text(page, 'h1')).toBe(loginLimit.title);
      expect(await page.locator('#sessions li .where').allTextContents()).toEqual([
        'ICT-SUITE-07, since today at 8:55',
        'LIBRARY-02, since Sunday 22 November at 15:10',
      ]);
      expect(await page.getByRole('button', { name: 'Sign out that one' }).count()).toBe(2);
      await screenshot(page, 'login-limit');
      expect(errors).toEqual([]);
    });

    it('"Sign out that one" answers sign-out-other with that session, then closes', async () => {
      const { page, calls } = await open('login-limit', loginLimit);
      await page.locator('#sign-out-1').click();
      const made = await calls();
      expect(made).toEqual([['answer', 'login-n-1', 'sign-out-other', undefined, 's-lib-02'], ['close']]);
      expect(asAnswer(made[0]!)).toMatchObject({ action: 'sign-out-other', target: 's-lib-02' });
    });

    it('"Sign out here" answers sign-out-here, then closes', async () => {
      const { page, calls } = await open('login-limit', loginLimit);
      await page.getByRole('button', { name: 'Sign out here' }).click();
      expect(await calls()).toEqual([['answer', 'login-n-1', 'sign-out-here'], ['close']]);
    });

    it('a hostile computer name appears as text and runs nothing', async () => {
      const hostile = { ...loginLimit, sessions: [{ sessionId: 's-x', hostname: HOSTILE, since: '2026-11-23T08:55:00.000Z' }] };
      expect(() => trayNotice.parse(hostile)).not.toThrow();
      const { page, dialogs, errors } = await open('login-limit', hostile);
      expect(await text(page, '#session-0 strong')).toBe(HOSTILE);
      expect(await page.locator('img').count()).toBe(0);
      await page.waitForTimeout(300);
      expect(dialogs).toEqual([]);
      expect(errors).toEqual([]);
    });

    it('has no serious accessibility violations, and Tab then Enter signs out the first other computer', async () => {
      const { page, calls } = await open('login-limit', loginLimit);
      expect(await seriousViolations(page)).toEqual([]);
      expect(await tabTo(page, '#sign-out-0')).toBe(true);
      await page.keyboard.press('Enter');
      expect(await calls()).toEqual([['answer', 'login-n-1', 'sign-out-other', undefined, 's-ict-07'], ['close']]);
    });
  });

  // ---- agreement --------------------------------------------------------------------

  describe('agreement', () => {
    it('shows the rules and the clause behind them', async () => {
      const { page, errors } = await open('agreement', agreement, { width: 440, height: 460 });
      expect(await text(page, 'h1')).toBe(agreement.title);
      expect(await text(page, '#agreement-text')).toBe(agreement.body);
      expect(await page.locator('#buttons button').allTextContents()).toEqual(['I agree', 'I do not agree']);
      await screenshot(page, 'agreement');
      expect(errors).toEqual([]);
    });

    it.each([
      ['I agree', 'agree'],
      ['I do not agree', 'decline'],
    ])('"%s" answers %s, then closes', async (name, action) => {
      const { page, calls } = await open('agreement', agreement);
      await page.getByRole('button', { name, exact: true }).click();
      expect(await calls()).toEqual([['answer', 'aup-n-1', action], ['close']]);
    });

    it('has no serious accessibility violations, and Tab then Enter agrees', async () => {
      const { page, calls } = await open('agreement', agreement);
      expect(await seriousViolations(page)).toEqual([]);
      expect(await tabTo(page, '#action-agree')).toBe(true);
      await page.keyboard.press('Enter');
      expect(await calls()).toEqual([['answer', 'aup-n-1', 'agree'], ['close']]);
    });
  });

  // ---- every notice window ----------------------------------------------------------

  it.each<[string, NoticePayload]>([
    ['notice', usbNotice],
    ['countdown', countdown],
    ['login-limit', loginLimit],
    ['agreement', agreement],
  ])('the %s window shows hostile words in title, body and clause as text', async (window, sample) => {
    const hostile = { ...sample, title: HOSTILE, body: `<script>alert(2)</script>${HOSTILE}`, clause: { ...clause, document: HOSTILE, quote: HOSTILE } };
    const { page, dialogs, errors } = await open(window, hostile);
    await page.getByText('Why?').click();
    expect(await text(page, 'h1')).toBe(HOSTILE);
    expect(await text(page, '#clause-document')).toBe(HOSTILE);
    expect(await text(page, '#clause-quote')).toBe(HOSTILE);
    expect(await page.locator('img, main script').count()).toBe(0);
    expect(await page.evaluate(() => document.title)).toBe(HOSTILE);
    await page.waitForTimeout(300);
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
  });
});
