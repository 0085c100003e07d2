#!/usr/bin/env node
'use strict';
// The CLI is TypeScript compiled to dist/ by `npm install` (the prepare script) or `npm run build`.
let cli;
try {
  cli = require('../dist/cli/main.js');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes('dist/cli/main.js')) {
    process.stderr.write('INV_ERR_INTERNAL: Invigilator is not built yet. Run `npm install` (or `npm run build`) in the checkout first.\n');
    process.exit(3);
  }
  throw e;
}
cli.main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`INV_ERR_INTERNAL: ${e && e.stack ? e.stack : e}\n`);
    process.exitCode = 3;
  },
);
