import { parseUntrustedJson } from '../../shared/untrusted-json';

/** Cursors are opaque to clients, so the paging key can change without breaking them. */
export function encodeCursor(ingestId: number): string {
  return Buffer.from(`i:${ingestId}`).toString('base64url');
}

/** The paging key, or -1 for a cursor we did not mint (the API checks the format first). */
export function decodeCursor(cursor: string): number {
  const match = /^i:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return match ? Number(match[1]) : -1;
}

export function isCursor(value: string): boolean {
  return /^[A-Za-z0-9_-]{1,32}$/.test(value) && decodeCursor(value) >= 0;
}

/** Longest key cursor the API takes: a device id, a program's key, or a lease's (since, device, session). */
export const KEY_CURSOR_MAX = 600;

/**
 * A cursor over text keys, for lists ordered by something other than an
 * ingest id (devices by hostname, programs by name, leases by age): the key
 * of the page's last row, opaque to clients as the numeric cursors are.
 */
export function encodeKeyCursor(kind: string, key: readonly string[]): string {
  return Buffer.from(JSON.stringify([kind, ...key])).toString('base64url');
}

/** The key, or undefined for a cursor of another kind or one we did not mint. */
export function decodeKeyCursor(kind: string, cursor: string, parts: number): string[] | undefined {
  if (cursor.length > KEY_CURSOR_MAX || !/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  const parsed = parseUntrustedJson(Buffer.from(cursor, 'base64url'), { maxBytes: KEY_CURSOR_MAX, maxDepth: 2 });
  if (!parsed.ok || !Array.isArray(parsed.value)) return undefined;
  const [k, ...key] = parsed.value as unknown[];
  return k === kind && key.length === parts && key.every((v): v is string => typeof v === 'string') ? key : undefined;
}

export const isKeyCursor =
  (kind: string, parts: number) =>
  (value: string): boolean =>
    decodeKeyCursor(kind, value, parts) !== undefined;
