import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { livenessFetch } from './liveness-fetch.ts';

/** A loopback server whose handler the test chooses per path; responses left open are ended at close. */
async function serve(t: { after(fn: () => Promise<void>): void }, handler: (path: string, res: ServerResponse) => void): Promise<string> {
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    open.add(res);
    handler(req.url ?? '/', res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    for (const res of open) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const fast = livenessFetch(fetch, { requestMs: 200, idleMs: 300 });

test('a request without an answer gives up after the request time; an answer passes through unchanged', async (t) => {
  const url = await serve(t, (path, res) => {
    if (path === '/ok') res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await assert.rejects(fast(`${url}/silent`), /no answer within 200 ms/);
  const res = await fast(`${url}/ok`);
  assert.deepEqual(await res.json(), { ok: true });
});

test('a stream that goes quiet is cut after the idle time, one that keeps talking is not', async (t) => {
  const url = await serve(t, (path, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write('{"type":"bookmark"}\n');
    if (path === '/chatty') {
      let n = 0;
      const every = setInterval(() => {
        res.write('{"type":"bookmark"}\n');
        if (++n === 4) {
          clearInterval(every);
          res.end();
        }
      }, 100);
    }
  });
  const quiet = await fast(`${url}/quiet`);
  await assert.rejects(quiet.text(), /stream quiet for 300 ms/);
  const chatty = await fast(`${url}/chatty`);
  assert.equal((await chatty.text()).trim().split('\n').length, 5, 'four lines 100 ms apart outlive a 300 ms idle time');
});

test('the caller can still abort a request itself', async (t) => {
  const url = await serve(t, () => undefined);
  const ac = new AbortController();
  const pending = livenessFetch(fetch, { requestMs: 10_000, idleMs: 10_000 })(`${url}/silent`, { signal: ac.signal });
  ac.abort(new Error('caller gave up'));
  await assert.rejects(pending, /caller gave up/);
});
