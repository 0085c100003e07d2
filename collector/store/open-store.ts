import { resolve } from 'node:path';
import { InvigilatorError } from '../../shared/errors';
import { PostgresStore } from './postgres/postgres-store';
import { SqliteStore } from './sqlite/sqlite-store';
import { prepareSqliteFile, sqliteOpenError } from './sqlite-file';
import type { CollectorStore } from './store';

export interface OpenStoreOptions {
  /** The key device secrets are sealed under (device-secret-box.ts). */
  secretKey: Buffer;
  /** POSIX modes apply to the SQLite files (not on Windows). */
  posix?: boolean;
  /** PostgreSQL: transactions at once for one burst of login claims (PostgresStore's `claimParts`). */
  claimTransactions?: number;
}

/**
 * Opens and migrates the store a `--db` URL names, sealing device secrets
 * under `secretKey`. A database that cannot be used is a coded error saying
 * what to do.
 */
export async function openStore(db: string, options: OpenStoreOptions): Promise<CollectorStore> {
  let store: CollectorStore;
  let sqlitePath: string | undefined;
  if (db.startsWith('sqlite:')) {
    const raw = db.slice('sqlite:'.length);
    sqlitePath = raw === ':memory:' ? raw : resolve(raw);
    if (sqlitePath !== ':memory:') prepareSqliteFile(sqlitePath, options.posix ?? true);
    try {
      store = new SqliteStore(sqlitePath, { secretKey: options.secretKey });
    } catch (e) {
      throw sqliteOpenError(sqlitePath, e) ?? new InvigilatorError('INV_ERR_STORE_FAILED', e instanceof Error ? e.message : String(e));
    }
  } else {
    store = new PostgresStore(db, { secretKey: options.secretKey, claimParts: options.claimTransactions });
  }
  try {
    await store.migrate();
  } catch (e) {
    await store.close().catch(() => undefined);
    // A coded refusal (a database sealed under another key) keeps its code.
    if (e instanceof InvigilatorError) throw e;
    throw (sqlitePath && sqliteOpenError(sqlitePath, e)) || new InvigilatorError('INV_ERR_STORE_FAILED', e instanceof Error ? e.message : String(e));
  }
  return store;
}
