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
