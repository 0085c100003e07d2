import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The version in package.json, read once: dist/cli/ sits two folders below it. */
export const VERSION: string = (() => {
  for (const up of ['../..', '../../..']) {
    try {
      return (JSON.parse(readFileSync(join(__dirname, up, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
})();
