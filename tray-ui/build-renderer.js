// Builds the tray windows: compiles tray-ui/renderer with tsconfig.renderer.json
// (ES modules for the browser, no bundler) and copies each window's .html and
// .css beside the compiled scripts in dist/tray-ui/renderer.
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
