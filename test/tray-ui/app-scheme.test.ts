import { join } from 'node:path';
import { RENDERER_CSP, rendererFileFor, serveRendererRequest, windowUrl } from '../../tray-ui/main/app-scheme';
import { ROOT } from '../support/cli';
import { ElectronStandIn, FakeAgent } from './electron-stand-in';
import { TrayApp } from '../../tray-ui/main/tray-app';

/** The built pages (npm test builds before Jest runs). */
const RENDERER = join(ROOT, 'dist/tray-ui/renderer');

describe("the tray's own scheme for its pages", () => {
  it('serves a built window with its type and the full policy, frame-ancestors included', async () => {
    const answer = await serveRendererRequest(RENDERER, windowUrl('notice'));
    expect(answer.status).toBe(200);
    expect(answer.headers).toMatchObject({
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': RENDERER_CSP,
      'x-content-type-options': 'nosniff',
    });
    expect(RENDERER_CSP).toContain("frame-ancestors 'none'");
    expect(answer.body.toString('utf8')).toMatch(/<html lang="en"/);
  });

  it.each([
    ['a parent folder', 'invigilator://tray/../../package.json'],
    ['an encoded parent folder', 'invigilator://tray/%2e%2e/%2e%2e/package.json'],
    ['a backslash', 'invigilator://tray/notice\\..\\..\\package.json'],
    ['a NUL', 'invigilator://tray/notice/index.html%00.js'],
    ['another host', 'invigilator://evil/notice/index.html'],
    ['another scheme', 'file:///etc/passwd'],
    ['a type it does not serve', 'invigilator://tray/notice/index.ts'],
  ])('refuses %s', async (_, url) => {
    expect(rendererFileFor(RENDERER, url)).toBeUndefined();
    expect((await serveRendererRequest(RENDERER, url)).status).toBe(404);
  });

  it('is registered as privileged before the app is ready, then handled, and windows load from it', async () => {
    const electron = new ElectronStandIn();
    const app = new TrayApp({
      electron: electron.api,
      agent: new FakeAgent(),
      rendererDir: RENDERER,
      preloadPath: '/p.js',
      iconDir: '/icons',
      signOut: () => undefined,
    });
    await app.start();
    expect(electron.privilegedSchemes).toEqual(['invigilator']);
    const handler = electron.schemeHandlers.get('invigilator')!;
    const response = await handler({ url: windowUrl('status') });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toBe(RENDERER_CSP);
    expect((await handler({ url: 'invigilator://tray/../package.json' })).status).toBe(404);
    app.stop();
  });
});
