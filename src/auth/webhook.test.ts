import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { FakeClock } from '../base/clock.ts';
import type { AuthRequest } from './authenticator.ts';
import { bufferLogger } from './log-buffer.ts';
import { WebhookAuthenticator, type WebhookOptions } from './webhook.ts';

type Handler = (body: unknown, res: ServerResponse) => void;

/** A real webhook on 127.0.0.1 that records what it was asked and answers with `handler`. */
async function webhook(t: { after: (fn: () => Promise<void>) => void }, handler: Handler) {
  const seen: unknown[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let text = '';
    for await (const c of req) text += c;
    const body = JSON.parse(text);
    seen.push(body);
    handler(body, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/authn`;
  return { url, seen };
}

function json(res: ServerResponse, value: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

const secret = 'Bearer hook-secret-1234567890';
const request: AuthRequest = { authorization: secret, method: 'POST', path: '/v1/vms', project: 'p1', source: '192.0.2.4' };

function make(url: string, extra: Partial<WebhookOptions> = {}) {
  const clock = new FakeClock();
  const log = bufferLogger();
  return { clock, log, auth: new WebhookAuthenticator({ url, clock, logger: log.logger, ...extra }) };
}

test('the webhook gets the header and request summary, and its allow answer becomes the identity', async (t) => {
  const hook = await webhook(t, (_b, res) => json(res, { allow: true, identity: { name: 'carol', roles: { p1: 'operator' } } }));
  const { auth } = make(hook.url);
  assert.deepEqual(await auth.authenticate(request), {
    outcome: 'ok',
    identity: { name: 'carol', roles: { p1: 'operator' }, authenticator: 'webhook' },
  });
  assert.deepEqual(hook.seen, [{ authorization: secret, method: 'POST', path: '/v1/vms', project: 'p1', source: '192.0.2.4' }]);
});

test('a deny answer denies', async (t) => {
  const hook = await webhook(t, (_b, res) => json(res, { allow: false }));
  assert.deepEqual(await make(hook.url).auth.authenticate(request), { outcome: 'deny', reason: 'webhook denied' });
});

test('answers are reused briefly for the same header and request, then asked again', async (t) => {
  const hook = await webhook(t, (_b, res) => json(res, { allow: true, identity: { name: 'carol' } }));
  const { auth, clock } = make(hook.url, { cacheTtlMs: 5000 });
  await auth.authenticate(request);
  await auth.authenticate(request);
  assert.equal(hook.seen.length, 1);
  await auth.authenticate({ ...request, path: '/v1/images' });
  assert.equal(hook.seen.length, 2, 'another request summary is asked about');
  clock.advance(5000);
  await auth.authenticate(request);
  assert.equal(hook.seen.length, 3);
});

test('the cache holds at most cacheSize answers', async (t) => {
  const hook = await webhook(t, (_b, res) => json(res, { allow: false }));
  const { auth } = make(hook.url, { cacheSize: 2 });
  for (const a of ['Bearer a', 'Bearer b', 'Bearer c', 'Bearer c', 'Bearer a']) await auth.authenticate({ ...request, authorization: a });
  assert.deepEqual(hook.seen.map((b) => (b as { authorization: string }).authorization), ['Bearer a', 'Bearer b', 'Bearer c', 'Bearer a']);
});

test('timeouts, errors, redirects and malformed answers deny and are not cached', async (t) => {
  const cases: [string, Handler][] = [
    ['timeout', () => {}],
    ['500', (_b, res) => json(res, { allow: true, identity: { name: 'x' } }, 500)],
    ['not json', (_b, res) => res.end('allow')],
    ['allow without identity', (_b, res) => json(res, { allow: true })],
    ['wrong types', (_b, res) => json(res, { allow: 'yes', identity: { name: 'x' } })],
    ['bad role', (_b, res) => json(res, { allow: true, identity: { name: 'x', roles: { p1: 'god' } } })],
    ['redirect', (_b, res) => res.writeHead(307, { location: 'http://127.0.0.1:9/' }).end()],
    ['too large', (_b, res) => json(res, { allow: true, identity: { name: 'x'.repeat(100_000) } })],
  ];
  for (const [name, handler] of cases) {
    const hook = await webhook(t, handler);
    const { auth, log } = make(hook.url, { timeoutMs: 300 });
    assert.deepEqual(await auth.authenticate(request), { outcome: 'deny', reason: 'webhook unavailable' }, name);
    if (name !== 'timeout') {
      await auth.authenticate(request);
      assert.equal(hook.seen.length, 2, `${name}: a failure is not cached`);
    }
    assert.match(log.text(), /auth webhook/, name);
    assert.ok(!log.text().includes('hook-secret'), `${name}: the header is not logged`);
  }
});

test('an unreachable webhook denies', async () => {
  const { auth } = make('http://127.0.0.1:1/authn');
  assert.deepEqual(await auth.authenticate(request), { outcome: 'deny', reason: 'webhook unavailable' });
  assert.deepEqual(await auth.authenticate({ ...request, authorization: '' }), { outcome: 'skip' });
});
