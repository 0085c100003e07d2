import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../node-common/logging';
import { hashToken, newId, newToken } from './device-auth';
import { createEnrollmentToken } from './http-api';
import type { CollectorStore, EnrollmentApproval } from './store/store';

export const ADMIN_TOKEN_FILE = 'admin-token';
export const ENROLLMENT_TOKEN_FILE = 'enrollment-token';

function readSecretFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Secrets are written readable by their owner only. */
function writeSecretFile(path: string, value: string): void {
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
}

/**
 * On first start, creates the admin API token and writes it to
 * `<dataDir>/admin-token`. Later starts keep it. Returns where it is, or
 * undefined when another collector process (sharing the database) made it.
 */
export async function ensureAdminToken(store: CollectorStore, dataDir: string, now: number, log: Logger): Promise<string | undefined> {
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  const existing = readSecretFile(path);
  if (existing && (await store.apiTokenRole(hashToken(existing))) === 'admin') return path;
  if (await store.hasApiToken('admin')) {
    log.info('an admin API token already exists in the database; this process did not create it', { dataDir });
    return undefined;
  }
  const token = newToken('inv_api_');
  await store.createApiToken({ id: newId('api-'), tokenHash: hashToken(token), role: 'admin', createdAt: new Date(now).toISOString() });
  writeSecretFile(path, token);
  return path;
}

/**
 * Keeps a usable enrollment token in `<dataDir>/enrollment-token`, for IT
 * support's installer and for `npm start`'s local agent. A missing, expired,
 * revoked or used-up one is replaced by one of `approval` (manual unless the
 * collector is told otherwise: its devices wait for the network manager), with
 * the default use limit and rate; one of the other approval mode is revoked
 * and replaced.
 */
export async function ensureEnrollmentToken(
  store: CollectorStore,
  dataDir: string,
  now: number,
  approval: EnrollmentApproval = 'manual',
): Promise<{ path: string; token: string }> {
  const path = join(dataDir, ENROLLMENT_TOKEN_FILE);
  const existing = readSecretFile(path);
  const usable = existing && (await store.findUsableEnrollmentToken(hashToken(existing), new Date(now).toISOString()));
  if (existing && usable && usable.uses < usable.maxUses && usable.approval === approval) return { path, token: existing };
  // A token of the other approval mode would stay usable after it left the file: it goes.
  if (usable && usable.approval !== approval) await store.revokeEnrollmentToken(usable.id, new Date(now).toISOString());
  const created = await createEnrollmentToken(store, now, 'created at first start', 24 * 90, { approval });
  writeSecretFile(path, created.token);
  return { path, token: created.token };
}
