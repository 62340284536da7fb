import type { AnyObject } from '../api/object.ts';
import type { ListQuery, Store } from './store.ts';

/** Every object a list query matches, page by page, with the revision of the first page (watch from there). */
export async function listAll(store: Store, query: Omit<ListQuery, 'limit' | 'continue'>): Promise<{ items: AnyObject[]; revision: number }> {
  const items: AnyObject[] = [];
  let cont: string | undefined;
  let revision = 0;
  do {
    const page = await store.list({ ...query, limit: 1000, ...(cont ? { continue: cont } : {}) });
    items.push(...page.items);
    revision ||= page.revision;
    cont = page.continue;
  } while (cont);
  return { items, revision };
}
