import { readFile } from 'node:fs/promises';
import { type Decoded, problem } from '../shared/errors';
import { preset } from '../shared/policy/presets';
import type { Policy } from '../shared/policy/schema';
import { decodePolicy } from '../shared/policy/validate';

/** A policy named by a preset (`basildon-primary`) or by the path of a JSON file; validated either way. */
export async function loadPolicy(nameOrPath: string): Promise<Decoded<Policy>> {
  const named = preset(nameOrPath);
  if (named) return { ok: true, value: named };
  if (!/[/\\.]/.test(nameOrPath))
    return { ok: false, problems: [problem('INV_ERR_POLICY_NOT_FOUND', '$', `no preset is called ${JSON.stringify(nameOrPath)}`)] };
  let bytes: Buffer;
  try {
    bytes = await readFile(nameOrPath);
  } catch (e) {
    return { ok: false, problems: [problem('INV_ERR_FILE_UNREADABLE', '$', `${nameOrPath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)] };
  }
  return decodePolicy(bytes);
}
