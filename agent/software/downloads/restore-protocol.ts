/**
 * What the agent and its restore child say to each other: the request as one
 * JSON argument, the answer as one JSON object on stdout. Both ends check
 * what they receive, since each is a boundary for the other.
 *
 * Hand-written rather than zod: the child imports this, and its start time is
 * every restore's latency, so it loads nothing but this file and `node:`
 * modules.
 */

export interface RestoreParams {
  /** Absolute path the file goes back to; its folder must exist. */
  target: string;
  size: number;
  sha256: string;
  /** `st_mode` as recorded; the child applies its permission bits. */
  mode: number;
  mtimeMs: number;
  /** Drop to this user (with `gid`) before anything else. */
  uid?: number;
  /** With `uid`, the group to drop to; alone, the group to give the file. */
  gid?: number;
}

export type RestoreResult = { ok: true; identity: string } | { ok: false; code: string; step: string };

type Check = (value: unknown) => boolean;

const count: Check = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const idNumber: Check = (v) => count(v) && (v as number) <= 0xffff_ffff;
const text =
  (max: number): Check =>
  (v) =>
    typeof v === 'string' && v.length > 0 && v.length <= max;

/** Every field the request may have, and whether it must. Anything else is refused. */
const PARAMS: Record<keyof RestoreParams, { check: Check; required: boolean }> = {
  target: { check: (v) => text(4096)(v) && !(v as string).includes('\0'), required: true },
  size: { check: count, required: true },
  sha256: { check: (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v), required: true },
  mode: { check: (v) => count(v) && (v as number) <= 0o177777, required: true },
  mtimeMs: { check: (v) => typeof v === 'number' && Number.isFinite(v), required: true },
  uid: { check: idNumber, required: false },
  gid: { check: idNumber, required: false },
};

/** The request, or the first reason it is not one. */
export function parseRestoreParams(json: string | undefined): { ok: true; params: RestoreParams } | { ok: false; reason: string } {
  if (json === undefined) return { ok: false, reason: 'no request' };
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'not an object' };
  const fields = value as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!Object.hasOwn(PARAMS, key)) return { ok: false, reason: `unknown field ${key.slice(0, 40)}` };
  }
  for (const [key, rule] of Object.entries(PARAMS)) {
    const present = fields[key] !== undefined;
    if (!present && rule.required) return { ok: false, reason: `missing ${key}` };
    if (present && !rule.check(fields[key])) return { ok: false, reason: `bad ${key}` };
  }
  if (fields.uid !== undefined && fields.gid === undefined) return { ok: false, reason: 'uid without gid' };
  return { ok: true, params: fields as unknown as RestoreParams };
}

/** The child's answer, or undefined when what it wrote is not one. */
export function parseRestoreResult(json: string): RestoreResult | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Record<string, unknown>;
  if (r.ok === true && typeof r.identity === 'string' && /^\d+:\d+$/.test(r.identity)) return { ok: true, identity: r.identity };
  if (r.ok === false && text(64)(r.code) && text(200)(r.step)) return { ok: false, code: r.code as string, step: r.step as string };
  return undefined;
}
