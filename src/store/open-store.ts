import { ApiError } from '../api/errors.ts';
import type { Clock } from '../base/clock.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';

/** Backends by URL scheme: `sqlite:PATH` (PostgreSQL joins as `postgres://…`). */
const backends: Record<string, (rest: string, opts: { clock?: Clock }) => Promise<Store>> = {
  sqlite: async (path, opts) => {
    if (!path) throw new ApiError('invalid', 'Invalid store URL: sqlite needs a path, e.g. sqlite:/var/lib/crowd/crowd.db');
    return new SqliteStore({ path, ...opts });
  },
};

export async function openStore(url: string, opts: { clock?: Clock } = {}): Promise<Store> {
  const colon = url.indexOf(':');
  const scheme = colon > 0 ? url.slice(0, colon) : '';
  const open = backends[scheme];
  if (!open)
    throw new ApiError('invalid', `Invalid store URL "${url}": expected one of ${Object.keys(backends).map((b) => `${b}:…`).join(', ')}`);
  return open(url.slice(colon + 1), opts);
}
