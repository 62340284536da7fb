import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AnyObject } from '../api/object.ts';
import { parseSelector } from '../api/selector.ts';
import type { WatchEvent } from '../api/wire.ts';
import { WatchHub } from './watch-hub.ts';

function put(revision: number, kind: string, name: string, labels: Record<string, string> = {}): WatchEvent & { type: 'put' } {
  const object = { kind, name, id: `${kind}_${name}`, labels, spec: {}, revision } as unknown as AnyObject;
  return { type: 'put', revision, object };
}

/** Takes `n` events from an iterator. */
async function take(it: AsyncIterator<WatchEvent>, n: number): Promise<WatchEvent[]> {
  const out: WatchEvent[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

test('watchers with equal filters share one group and each gets every matching event once', async () => {
  const hub = new WatchHub();
  const a = hub.subscribe({ kinds: ['site', 'vm'] });
  const b = hub.subscribe({ kinds: ['vm', 'site'] });
  const other = hub.subscribe({ kinds: ['vm'], selector: parseSelector('app=web') });
  assert.equal(hub.size, 3);
  assert.equal(hub.filters, 2);
  hub.publish(put(1, 'site', 's1'));
  hub.publish(put(2, 'vm', 'v1', { app: 'web' }));
  hub.publish(put(3, 'node', 'n1'));
  const [ia, ib, io] = [a, b, other].map((s) => s[Symbol.asyncIterator]());
  assert.deepEqual((await take(ia!, 2)).map((e) => e.revision), [1, 2]);
  assert.deepEqual((await take(ib!, 2)).map((e) => e.revision), [1, 2]);
  assert.deepEqual((await take(io!, 1)).map((e) => e.revision), [2]);
});

test('a waiting watcher wakes for an event published later, in order', async () => {
  const hub = new WatchHub();
  const it = hub.subscribe({ kinds: ['site'] })[Symbol.asyncIterator]();
  const pending = take(it, 3);
  hub.publish(put(1, 'site', 'a'));
  hub.publish(put(2, 'site', 'b'));
  await Promise.resolve();
  hub.publish(put(3, 'site', 'c'));
  assert.deepEqual((await pending).map((e) => e.revision), [1, 2, 3]);
});

test('closing the last watcher of a filter removes its group, and the others keep receiving', async () => {
  const hub = new WatchHub();
  const a = hub.subscribe({ kinds: ['site'] });
  const b = hub.subscribe({ kinds: ['site'] });
  a.close();
  a.close();
  assert.equal(hub.size, 1);
  assert.equal(hub.filters, 1);
  hub.publish(put(1, 'site', 'a'));
  assert.deepEqual((await take(b[Symbol.asyncIterator](), 1)).map((e) => e.revision), [1]);
  assert.deepEqual(await a[Symbol.asyncIterator]().next(), { done: true, value: undefined });
  b.close();
  assert.equal(hub.size, 0);
  assert.equal(hub.filters, 0);
  const again = hub.subscribe({ kinds: ['site'] });
  hub.publish(put(2, 'site', 'b'));
  assert.deepEqual((await take(again[Symbol.asyncIterator](), 1)).map((e) => e.revision), [2]);
});

test('a closed watcher ends its iteration after the events it already holds', async () => {
  const hub = new WatchHub();
  const s = hub.subscribe({});
  const it = s[Symbol.asyncIterator]();
  hub.publish(put(1, 'site', 'a'));
  s.close();
  hub.publish(put(2, 'site', 'b'));
  assert.deepEqual((await take(it, 5)).map((e) => e.revision), [1]);
});

test('leaving the loop early unsubscribes the watcher', async () => {
  const hub = new WatchHub();
  const s = hub.subscribe({ kinds: ['site'] });
  hub.publish(put(1, 'site', 'a'));
  for await (const ev of s) {
    assert.equal(ev.revision, 1);
    break;
  }
  assert.equal(hub.size, 0);
});

test('a watcher that falls 20,000 events behind is cut off with gone', async () => {
  const hub = new WatchHub();
  const it = hub.subscribe({ kinds: ['site'] })[Symbol.asyncIterator]();
  for (let i = 1; i <= 20_001; i++) hub.publish(put(i, 'site', 'a'));
  assert.equal((await take(it, 20_000)).length, 20_000);
  await assert.rejects(it.next(), (e: Error & { code?: string }) => e.code === 'gone');
});
