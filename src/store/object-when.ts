import type { AnyObject } from '../api/object.ts';
import type { Store } from './store.ts';

/**
 * The first version of an object that satisfies `pred`: the current one, or
 * one arriving on a watch; rejects after `ms`. For tests that wait on state
 * instead of sleeping.
 */
export async function objectWhen(store: Store, ref: { kind: string; name: string; project?: string }, pred: (o: AnyObject) => boolean, ms = 10_000): Promise<AnyObject> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  let last: AnyObject | undefined;
  try {
    last = await store.get({ kind: ref.kind, idOrName: ref.name, ...(ref.project ? { project: ref.project } : {}) });
    if (pred(last)) return last;
    for await (const ev of store.watch({ kinds: [ref.kind], fromRevision: last.revision }, ac.signal)) {
      if (ev.type !== 'put' || ev.object.name !== ref.name || (ref.project && ev.object.project !== ref.project)) continue;
      last = ev.object;
      if (pred(last)) return last;
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  throw new Error(`${ref.kind} "${ref.name}" never matched within ${ms} ms; last status: ${JSON.stringify(last?.status)}`);
}
