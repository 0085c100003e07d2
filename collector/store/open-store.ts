import { resolve } from 'node:path';
import { InvigilatorError } from '../../shared/errors';
import { PostgresStore } from './postgres/postgres-store';
import { SqliteStore } from './sqlite/sqlite-store';
import type { CollectorStore } from './store';

/** Opens and migrates the store a `--db` URL names, sealing device secrets under `secretKey` (device-secret-box.ts). */
export async function openStore(db: string, options: { secretKey: Buffer }): Promise<CollectorStore> {
  let store: CollectorStore;
  if (db.startsWith('sqlite:')) {
    store = new SqliteStore(resolve(db.slice('sqlite:'.length)), options);
  } else {
    store = new PostgresStore(db, options);
  }
  try {
    await store.migrate();
  } catch (e) {
    await store.close();
    // A coded refusal (a database sealed under another key) keeps its code.
    if (e instanceof InvigilatorError) throw e;
    throw new InvigilatorError('INV_ERR_STORE_FAILED', e instanceof Error ? e.message : String(e));
  }
  return store;
}
