import { resolve } from 'node:path';
import { InvigilatorError } from '../../shared/errors';
import { PostgresStore } from './postgres/postgres-store';
import { SqliteStore } from './sqlite/sqlite-store';
import type { CollectorStore } from './store';

/** Opens and migrates the store a `--db` URL names. */
export async function openStore(db: string): Promise<CollectorStore> {
  let store: CollectorStore;
  if (db.startsWith('sqlite:')) {
    store = new SqliteStore(resolve(db.slice('sqlite:'.length)));
  } else {
    store = new PostgresStore(db);
  }
  try {
    await store.migrate();
  } catch (e) {
    await store.close();
    throw new InvigilatorError('INV_ERR_STORE_FAILED', e instanceof Error ? e.message : String(e));
  }
  return store;
}
