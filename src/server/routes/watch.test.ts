import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyObject } from '../../api/object.ts';
import type { WatchEvent } from '../../api/wire.ts';
import { FakeClock } from '../../base/clock.ts';
import type { Store, WatchQuery } from '../../store/store.ts';
import { buildTestApp, type TestApp } from '../test-app.ts';

interface Frame {
  id?: string;
  event: WatchEvent;
}

/** Reads SSE frames or NDJSON lines from a streaming response, one at a time. */
class StreamReader {
  private buffer = '';
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();

  constructor(
    res: Response,
    private readonly sse: boolean,
  ) {
    this.reader = res.body!.getReader();
  }

  /** The next frame, or undefined when the stream ended. */
  async next(): Promise<Frame | undefined> {
    const sep = this.sse ? '\n\n' : '\n';
    while (!this.buffer.includes(sep)) {
      const { done, value } = await this.reader.read();
      if (done) return undefined;
      this.buffer += this.decoder.decode(value, { stream: true });
    }
    const at = this.buffer.indexOf(sep);
    const text = this.buffer.slice(0, at);
    this.buffer = this.buffer.slice(at + sep.length);
    if (!this.sse) return { event: JSON.parse(text) as WatchEvent };
    const fields = new Map(text.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
    return { id: fields.get('id'), event: JSON.parse(fields.get('data')!) as WatchEvent };
  }

  /** Stops reading: the client disconnects. */
  cancel(): Promise<void> {
    return this.reader.cancel();
  }

  async nextChange(): Promise<Frame> {
    for (;;) {
      const f = await this.next();
      assert.ok(f, 'stream ended early');
      if (f.event.type !== 'bookmark') return f;
    }
  }
}

/** Resolves each time a store watch is aborted, so a test can wait for the server to notice a disconnect. */
function watchAborts(store: Store): { next(): Promise<void> } {
  const waiting: (() => void)[] = [];
  const original = store.watch.bind(store);
  store.watch = (q: WatchQuery, signal: AbortSignal) => {
    signal.addEventListener('abort', () => waiting.shift()?.(), { once: true });
    return original(q, signal);
  };
  return { next: () => new Promise<void>((r) => waiting.push(r)) };
}

async function listening(t: TestApp): Promise<string> {
  return t.app.listen({ host: '127.0.0.1', port: 0 });
}

const createVm = async (t: TestApp, name: string, labels: Record<string, string> = {}) => {
  const r = await t.app.inject({ method: 'POST', url: '/v1/vms', headers: t.auth, payload: { name, labels, spec: { image: 'debian', machineType: 'small' } } });
  assert.equal(r.statusCode, 201, r.body);
  return r.json<AnyObject>();
};

test('an SSE watch streams changes with the revision as id and resumes from Last-Event-ID', async () => {
  const t = await buildTestApp();
  const deadline = AbortSignal.timeout(20_000);
  try {
    await t.seed();
    const aborts = watchAborts(t.store);
    const url = await listening(t);
    const headers = { ...t.auth, accept: 'text/event-stream' };
    const ctl = new AbortController();
    const res = await fetch(`${url}/v1/watch?kinds=vm`, { headers, signal: AbortSignal.any([ctl.signal, deadline]) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const stream = new StreamReader(res, true);
    const first = await stream.next();
    assert.deepEqual(first?.event, { type: 'bookmark', revision: await t.store.revision() });

    const a = await createVm(t, 'a');
    const got = await stream.nextChange();
    assert.equal(got.id, String(a.revision));
    assert.equal(got.event.type, 'put');
    assert.deepEqual(got.event.type === 'put' && got.event.object, a);

    const aborted = aborts.next();
    ctl.abort();
    await aborted;
    const b = await createVm(t, 'b');
    const c = await createVm(t, 'c');

    const again = await fetch(`${url}/v1/watch?kinds=vm`, { headers: { ...headers, 'last-event-id': got.id! }, signal: deadline });
    const resumed = new StreamReader(again, true);
    const e1 = await resumed.nextChange();
    const e2 = await resumed.nextChange();
    assert.deepEqual([e1.id, e2.id], [String(b.revision), String(c.revision)]);
    await resumed.cancel();
  } finally {
    await t.close();
  }
});

test('an NDJSON watch delivers only what its selector matches, deletes included', async () => {
  const t = await buildTestApp();
  const deadline = AbortSignal.timeout(20_000);
  try {
    await t.seed();
    const url = await listening(t);
    const res = await fetch(`${url}/v1/watch?kinds=vm&selector=env%3Dprod&revision=${await t.store.revision()}`, { headers: t.auth, signal: deadline });
    assert.match(res.headers.get('content-type')!, /^application\/x-ndjson/);
    const stream = new StreamReader(res, false);
    await createVm(t, 'dev-1', { env: 'dev' });
    const prod = await createVm(t, 'prod-1', { env: 'prod' });
    await t.app.inject({ method: 'DELETE', url: '/v1/vms/prod-1', headers: t.auth });

    const put = await stream.nextChange();
    const del = await stream.nextChange();
    assert.deepEqual([put.event.type, put.event.revision], ['put', prod.revision]);
    assert.deepEqual([del.event.type, del.event.type === 'delete' && del.event.object.name], ['delete', 'prod-1']);
    await stream.cancel();
  } finally {
    await t.close();
  }
});

test('a watch replays history after the requested revision before live changes', async () => {
  const t = await buildTestApp();
  const deadline = AbortSignal.timeout(20_000);
  try {
    await t.seed();
    const from = await t.store.revision();
    const a = await createVm(t, 'a');
    const url = await listening(t);
    const res = await fetch(`${url}/v1/watch?kinds=vm&revision=${from}`, { headers: t.auth, signal: deadline });
    const stream = new StreamReader(res, false);
    assert.equal((await stream.nextChange()).event.revision, a.revision);
    const b = await createVm(t, 'b');
    assert.equal((await stream.nextChange()).event.revision, b.revision);
    await stream.cancel();
  } finally {
    await t.close();
  }
});

test('a quiet watch gets bookmarks on the bookmark interval', async () => {
  const clock = new FakeClock();
  const t = await buildTestApp({ clock, watchBookmarkMs: 5_000 });
  const deadline = AbortSignal.timeout(20_000);
  try {
    await t.seed();
    const url = await listening(t);
    const res = await fetch(`${url}/v1/watch?kinds=network`, { headers: t.auth, signal: deadline });
    const stream = new StreamReader(res, false);
    const rev = await t.store.revision();
    assert.deepEqual((await stream.next())?.event, { type: 'bookmark', revision: rev });
    clock.advance(5_000);
    assert.deepEqual((await stream.next())?.event, { type: 'bookmark', revision: rev });
    await stream.cancel();
  } finally {
    await t.close();
  }
});

test('shutting the server down ends open watch streams cleanly', async () => {
  const t = await buildTestApp();
  const deadline = AbortSignal.timeout(20_000);
  let closed = false;
  try {
    await t.seed();
    const url = await listening(t);
    const res = await fetch(`${url}/v1/watch`, { headers: t.auth, signal: deadline });
    const stream = new StreamReader(res, false);
    assert.equal((await stream.next())?.event.type, 'bookmark');
    const closing = t.close();
    closed = true;
    assert.equal(await stream.next(), undefined);
    await closing;
  } finally {
    if (!closed) await t.close();
  }
});

test('watchers sharing a filter each get a change once in their own framing; other filters get only theirs', async () => {
  const t = await buildTestApp();
  const deadline = AbortSignal.timeout(20_000);
  try {
    await t.seed();
    const url = await listening(t);
    const rev = await t.store.revision();
    const open = async (query: string, sse: boolean) => {
      const res = await fetch(`${url}/v1/watch?${query}&revision=${rev}`, { headers: { ...t.auth, accept: sse ? 'text/event-stream' : 'application/x-ndjson' }, signal: deadline });
      assert.equal(res.status, 200);
      return new StreamReader(res, sse);
    };
    const same = [await open('kinds=vm', false), await open('kinds=vm', true), await open('kinds=vm', false)];
    const prodOnly = await open('kinds=vm&selector=env%3Dprod', false);
    const dev = await createVm(t, 'dev-1', { env: 'dev' });
    const prod = await createVm(t, 'prod-1', { env: 'prod' });
    for (const [i, s] of same.entries()) {
      const a = await s.nextChange();
      const b = await s.nextChange();
      assert.deepEqual([a.event.revision, b.event.revision], [dev.revision, prod.revision], `watcher ${i}`);
      assert.deepEqual(a.event.type === 'put' && a.event.object, dev);
      assert.equal(a.id, i === 1 ? String(dev.revision) : undefined);
    }
    const only = await prodOnly.nextChange();
    assert.deepEqual([only.event.type, only.event.revision], ['put', prod.revision]);
    for (const s of [...same, prodOnly]) await s.cancel();
  } finally {
    await t.close();
  }
});

/** Decodes an HTTP/1.1 chunked body, failing on any malformed chunk, and says whether the last chunk was there. */
function dechunk(body: string): { text: string; complete: boolean } {
  let text = '';
  let at = 0;
  while (at < body.length) {
    const eol = body.indexOf('\r\n', at);
    assert.ok(eol > at, `chunk size line at ${at}`);
    const size = parseInt(body.slice(at, eol), 16);
    assert.ok(Number.isInteger(size), `chunk size "${body.slice(at, eol)}"`);
    if (size === 0) return { text, complete: body.slice(eol) === '\r\n\r\n' };
    text += body.slice(eol + 2, eol + 2 + size);
    assert.equal(body.slice(eol + 2 + size, eol + 4 + size), '\r\n', 'chunk end');
    at = eol + 4 + size;
  }
  return { text, complete: false };
}

for (const version of ['1.1', '1.0']) {
  test(`an HTTP/${version} client gets well-formed NDJSON ${version === '1.1' ? 'chunks, ended by the last chunk' : 'until the connection closes'}`, async () => {
    const t = await buildTestApp();
    const deadline = AbortSignal.timeout(20_000);
    let closed = false;
    try {
      await t.seed();
      const { port } = new URL(await listening(t));
      const socket = connect({ host: '127.0.0.1', port: Number(port) });
      let raw = '';
      const seen = (text: string) =>
        new Promise<void>((resolve, reject) => {
          const check = () => raw.includes(text) && (socket.off('data', check), resolve());
          socket.on('data', check);
          deadline.addEventListener('abort', () => reject(new Error(`no "${text}" in ${JSON.stringify(raw)}`)), { once: true });
          check();
        });
      socket.on('data', (b: Buffer) => (raw += b.toString('utf8')));
      const ended = once(socket, 'close');
      socket.write(`GET /v1/watch?kinds=vm HTTP/${version}\r\nHost: x\r\nAccept: application/x-ndjson\r\nAuthorization: ${t.auth.authorization}\r\n\r\n`);
      await seen('bookmark');
      const vm = await createVm(t, 'raw-1');
      await seen('raw-1');
      await t.close();
      closed = true;
      await ended;
      const [head, body] = [raw.slice(0, raw.indexOf('\r\n\r\n')), raw.slice(raw.indexOf('\r\n\r\n') + 4)];
      assert.match(head, new RegExp(`^HTTP/1.1 200 OK`));
      assert.equal(/transfer-encoding: chunked/i.test(head), version === '1.1');
      const { text, complete } = version === '1.1' ? dechunk(body) : { text: body, complete: true };
      assert.ok(complete, 'the stream ended with the last chunk');
      const events = text.trim().split('\n').map((l) => JSON.parse(l) as WatchEvent);
      assert.deepEqual(events.map((e) => e.type), ['bookmark', 'put']);
      assert.deepEqual(events[1]!.type === 'put' && events[1]!.object, vm);
    } finally {
      if (!closed) await t.close();
    }
  });
}
