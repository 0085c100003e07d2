// Renders the tray icons from their SVG sources into the PNGs Electron's Tray
// takes (<state>.png at 32 px and <state>@2x.png at 64 px, which Electron
// picks on high-DPI screens) and the app icon electron-builder packages
// (tray-ui/build/icon.png, 512 px). Run by hand after changing an SVG, with
// Debian's chromium installed: `node tray-ui/icons/render-icons.js`. The PNGs
// are committed, so building never needs a browser.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const here = __dirname;
const jobs = [
  ...['protected', 'attention', 'disconnected'].flatMap((s) => [
    { svg: `${s}.svg`, out: path.join(here, `${s}.png`), size: 32 },
    { svg: `${s}.svg`, out: path.join(here, `${s}@2x.png`), size: 64 },
  ]),
  { svg: 'app.svg', out: path.join(here, '..', 'build', 'icon.png'), size: 512 },
];

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-background-networking', '--disable-gpu'],
  });
  try {
    for (const { svg, out, size } of jobs) {
      const page = await browser.newPage({ viewport: { width: size, height: size }, deviceScaleFactor: 1 });
      const source = fs.readFileSync(path.join(here, svg), 'utf8');
      await page.setContent(
        `<html><body style="margin:0;background:transparent">${source.replace('<svg ', `<svg width="${size}" height="${size}" `)}</body></html>`,
      );
      fs.mkdirSync(path.dirname(out), { recursive: true });
      await page.screenshot({ path: out, omitBackground: true, clip: { x: 0, y: 0, width: size, height: size } });
      await page.close();
      console.log(`${path.relative(process.cwd(), out)} (${size} px)`);
    }
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
