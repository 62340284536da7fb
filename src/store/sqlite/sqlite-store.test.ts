import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeConformance } from '../conformance.ts';
import type { Store } from '../store.ts';
import { SqliteStore } from './sqlite-store.ts';

storeConformance('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-sqlite-'));
  const path = join(dir, 'crowd.db');
  let store: Store = new SqliteStore({ path });
  return {
    store,
    reopen: async () => {
      await store.close();
      store = new SqliteStore({ path });
      return store;
    },
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
