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
  private wake: (() => void) | undefined;
  private failure: ApiError | undefined;
  private closed = false;

  constructor(
    readonly query: Omit<WatchQuery, 'fromRevision'>,
    private readonly onClose: (s: Subscription) => void,
  ) {}

  push(ev: WatchEvent): void {
    if (this.closed || this.failure) return;
    if (this.queue.length >= maxQueued) {
      this.failure = new ApiError('gone', 'Watch fell too far behind: list again and watch from its revision');
    } else this.queue.push(ev);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.onClose(this);
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    while (true) {
      while (this.queue.length) yield this.queue.shift()!;
      if (this.failure) throw this.failure;
      if (this.closed) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}

/** Fans committed changes out to live watchers; shared by every backend. */
export class WatchHub {
  private readonly subs = new Set<Subscription>();

  subscribe(query: Omit<WatchQuery, 'fromRevision'>): Subscription {
    const s = new Subscription(query, (x) => this.subs.delete(x));
    this.subs.add(s);
    return s;
  }

  publish(ev: WatchEvent & { type: 'put' | 'delete' }): void {
    for (const s of this.subs) if (matchesWatch(s.query, ev.object)) s.push(ev);
  }

  get size(): number {
    return this.subs.size;
  }

  closeAll(): void {
    for (const s of [...this.subs]) s.close();
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
