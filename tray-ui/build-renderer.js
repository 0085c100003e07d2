// Builds the tray windows: compiles tray-ui/renderer with tsconfig.renderer.json
// (ES modules for the browser, no bundler) and copies each window's .html and
// .css beside the compiled scripts in dist/tray-ui/renderer, and the icons to
// dist/tray-ui/icons.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const src = path.join(root, 'tray-ui', 'renderer');
const out = path.join(root, 'dist', 'tray-ui', 'renderer');

execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.renderer.json')], { stdio: 'inherit' });

let copied = 0;
function copy(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const from = path.join(dir, entry.name);
    if (entry.isDirectory()) copy(from);
    else if (/\.(html|css)$/.test(entry.name)) {
      const to = path.join(out, path.relative(src, from));
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.copyFileSync(from, to);
      copied++;
    }
  }
}
copy(src);
console.log(`tray-ui renderer: compiled, ${copied} .html/.css files copied to ${path.relative(root, out)}`);

// The tray icons, rendered from their SVGs by tray-ui/icons/render-icons.js and committed.
const iconsOut = path.join(root, 'dist', 'tray-ui', 'icons');
fs.mkdirSync(iconsOut, { recursive: true });
const icons = fs.readdirSync(path.join(root, 'tray-ui', 'icons')).filter((n) => n.endsWith('.png'));
for (const name of icons) fs.copyFileSync(path.join(root, 'tray-ui', 'icons', name), path.join(iconsOut, name));
console.log(`tray-ui icons: ${icons.length} copied to ${path.relative(root, iconsOut)}`);
