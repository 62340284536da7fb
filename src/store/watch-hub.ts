import { ApiError } from '../api/errors.ts';
import { matchesFieldFilter } from '../api/field-filter.ts';
import type { AnyObject } from '../api/object.ts';
import { matchesSelector } from '../api/selector.ts';
import type { WatchEvent } from '../api/wire.ts';
import type { WatchQuery } from './store.ts';

/** Whether an event's object passes a watch's filters. */
export function matchesWatch(q: Omit<WatchQuery, 'fromRevision'>, obj: AnyObject): boolean {
  if (q.kinds?.length && !q.kinds.includes(obj.kind)) return false;
  if (q.project && q.project !== '*' && obj.project !== undefined && obj.project !== q.project) return false;
  if (q.ids && !q.ids.has(obj.id)) return false;
  if (q.selector?.length && !matchesSelector(q.selector, obj.labels)) return false;
  if (q.where?.length && !q.where.every((f) => matchesFieldFilter(obj as unknown as Record<string, unknown>, f))) return false;
  return true;
}

/** Events a subscriber may hold before it is cut off as too slow. */
const maxQueued = 20_000;

/** One watcher's queue of live events. */
export class Subscription implements AsyncIterable<WatchEvent> {
  private queue: WatchEvent[] = [];
  private head = 0;
  private wake: (() => void) | undefined;
  private failure: ApiError | undefined;
  private closed = false;

  constructor(
    readonly query: Omit<WatchQuery, 'fromRevision'>,
    private readonly onClose: (s: Subscription) => void,
  ) {}

  push(ev: WatchEvent): void {
    if (this.closed || this.failure) return;
    if (this.queue.length - this.head >= maxQueued) {
      this.failure = new ApiError('gone', 'Watch fell too far behind: list again and watch from its revision');
    } else this.queue.push(ev);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.onClose(this);
    this.wake?.();
  }

  /** The next event, or undefined once closed; waits only when the queue is empty (a hot fan-out path: no generator, no shift()). */
  private next(): WatchEvent | undefined | Promise<WatchEvent | undefined> {
    if (this.head < this.queue.length) {
      const ev = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as WatchEvent;
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      }
      return ev;
    }
    if (this.failure) throw this.failure;
    if (this.closed) return undefined;
    return new Promise<void>((r) => (this.wake = r)).then(() => {
      this.wake = undefined;
      return this.next();
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    return {
      next: async () => {
        const ev = await this.next();
        return ev === undefined ? { done: true, value: undefined } : { done: false, value: ev };
      },
      return: async () => {
        this.close();
        return { done: true, value: undefined };
      },
    };
  }
}

/** Watchers with the same filters: an event is matched once for all of them. */
interface FilterGroup {
  query: Omit<WatchQuery, 'fromRevision'>;
  subs: Set<Subscription>;
}

/** The filters of a watch as one string, so that equal filters share a group. */
function filterKey(q: Omit<WatchQuery, 'fromRevision'>): string {
  return JSON.stringify([[...(q.kinds ?? [])].sort(), q.project ?? '*', q.selector ?? [], q.where ?? [], q.ids ? [...q.ids].sort() : null]);
}

/** Fans committed changes out to live watchers, grouped by filter; shared by every backend. */
export class WatchHub {
  private readonly groups = new Map<string, FilterGroup>();
  private count = 0;

  subscribe(query: Omit<WatchQuery, 'fromRevision'>): Subscription {
    const key = filterKey(query);
    let group = this.groups.get(key);
    if (group === undefined) {
      group = { query, subs: new Set() };
      this.groups.set(key, group);
    }
    const g = group;
    const s = new Subscription(query, (x) => {
      if (!g.subs.delete(x)) return;
      this.count--;
      if (g.subs.size === 0 && this.groups.get(key) === g) this.groups.delete(key);
    });
    g.subs.add(s);
    this.count++;
    return s;
  }

  publish(ev: WatchEvent & { type: 'put' | 'delete' }): void {
    for (const g of this.groups.values()) if (matchesWatch(g.query, ev.object)) for (const s of g.subs) s.push(ev);
  }

  get size(): number {
    return this.count;
  }

  /** How many distinct filters the live watchers use. */
  get filters(): number {
    return this.groups.size;
  }

  closeAll(): void {
    for (const g of [...this.groups.values()]) for (const s of [...g.subs]) s.close();
  }
}

/**
 * The watch algorithm every backend shares: subscribe first, then replay the
 * history after `fromRevision`, then hand over to live events, skipping those
 * the replay already delivered.
 */
export async function* replayThenLive(
  hub: WatchHub,
  query: WatchQuery,
  signal: AbortSignal,
  replay: (after: number) => AsyncIterable<WatchEvent & { type: 'put' | 'delete' }>,
): AsyncGenerator<WatchEvent> {
  const sub = hub.subscribe(query);
  const onAbort = () => sub.close();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal.aborted) return;
    let last = query.fromRevision;
    for await (const ev of replay(last)) {
      if (signal.aborted) return;
      if (!matchesWatch(query, ev.object)) continue;
      last = ev.revision;
      yield ev;
    }
    for await (const ev of sub) {
      if (ev.revision <= last) continue;
      last = ev.revision;
      yield ev;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    sub.close();
  }
}
