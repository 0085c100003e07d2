import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const INVENTORY_RECORDINGS = join(__dirname, '../../../fixtures/software/inventory-recordings');
export const INVENTORY_BUNDLES = join(__dirname, '../../../fixtures/software/inventory-bundles');

/** A recording: `#` header lines that must say where it came from, `#---`, then the output exactly as printed. */
export function inventoryRecording(name: string): string {
  const text = readFileSync(join(INVENTORY_RECORDINGS, name), 'utf8');
  const end = text.indexOf('\n#---\n');
  if (end < 0) throw new Error(`${name}: no "#---" line ends the header`);
  const header = text.slice(0, end).split('\n');
  if (!header.some((l) => /^# Source: \S/.test(l)) || !header.some((l) => /^# Constructed: (yes|no)\b/.test(l)))
    throw new Error(`${name}: no Source or Constructed line`);
  return text.slice(end + '\n#---\n'.length);
}
