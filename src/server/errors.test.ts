import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { InjectOptions } from 'fastify';
import type { ErrorBody, ErrorCode } from '../api/errors.ts';
import type { AnyObject } from '../api/object.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import { FakeClock } from '../base/clock.ts';
import { buildTestApp, type TestApp } from './test-app.ts';

/** A credential that authenticates but holds no rights. */
const viewer: Authenticator = {
  name: 'test-viewer',
  authenticate: async (req) => (req.authorization === 'Bearer viewer' ? { outcome: 'ok', identity: { name: 'viewer', authenticator: 'test-viewer' } } : { outcome: 'skip' }),
};

const vm = (extra: Record<string, unknown> = {}, spec: Record<string, unknown> = {}) => ({
  name: 'web-1',
  spec: { image: 'debian', machineType: 'small', nics: [{ network: 'lan' }], ...spec },
  ...extra,
});

interface Case {
  name: string;
  request: (t: TestApp, existing: AnyObject) => InjectOptions;
  status: number;
  code: ErrorCode;
  /** The detail that must name the problem; none for errors without a location (401, 403, 404). */
  path?: string;
}

const json = (auth: Record<string, string>, method: InjectOptions['method'], url: string, payload: unknown): InjectOptions => ({ method, url, headers: auth, payload: payload as InjectOptions['payload'] });

const cases: Case[] = [
  { name: 'an unknown top-level field', request: ({ auth }) => json(auth, 'POST', '/v1/vms', vm({ name: 'web-2', colour: 'red' })), status: 400, code: 'invalid', path: '/colour' },
  { name: 'an unknown field inside the spec', request: ({ auth }) => json(auth, 'POST', '/v1/vms', vm({ name: 'web-2' }, { turbo: true })), status: 400, code: 'invalid', path: '/spec/turbo' },
  { name: 'a number sent as a string', request: ({ auth }) => json(auth, 'POST', '/v1/vms', vm({ name: 'web-2' }, { resources: { cpus: '2' } })), status: 400, code: 'invalid', path: '/spec/resources/cpus' },
  { name: 'a name that is not a DNS label', request: ({ auth }) => json(auth, 'POST', '/v1/vms', vm({ name: 'Web_2' })), status: 400, code: 'invalid', path: '/name' },
  { name: 'a duplicate name', request: ({ auth }) => json(auth, 'POST', '/v1/vms', vm()), status: 409, code: 'already_exists', path: '/name' },
  { name: 'a reference to a missing image', request: ({ auth }) => json(auth, 'POST', '/v1/vms', vm({ name: 'web-2' }, { image: 'nope' })), status: 400, code: 'invalid', path: '/spec/image' },
  { name: 'an install mode not built yet', request: ({ auth }) => json(auth, 'POST', '/v1/vms', vm({ name: 'web-2' }, { install: { mode: 'self_install' } })), status: 400, code: 'invalid', path: '/spec/install/mode' },
  { name: 'a value outside the machine type\'s range', request: ({ auth }) => json(auth, 'POST', '/v1/vms', vm({ name: 'web-2' }, { resources: { cpus: 64 } })), status: 400, code: 'invalid', path: '/spec/resources/cpus' },
  { name: 'a body over the size limit', request: ({ auth }) => json(auth, 'POST', '/v1/vms', vm({ name: 'web-2', metadata: { blob: 'x'.repeat(1_100_000) } })), status: 413, code: 'too_large', path: '/' },
  { name: 'metadata over 64 KiB', request: ({ auth }) => json(auth, 'POST', '/v1/vms', vm({ name: 'web-2', metadata: { blob: 'x'.repeat(70_000) } })), status: 413, code: 'too_large', path: '/metadata' },
  { name: 'a malformed label selector', request: ({ auth }) => ({ url: '/v1/vms?selector=' + encodeURIComponent('env in (prod'), headers: auth }), status: 400, code: 'invalid', path: 'selector' },
  { name: 'a malformed field filter', request: ({ auth }) => ({ url: '/v1/vms?where=labels.env=prod', headers: auth }), status: 400, code: 'invalid', path: 'where' },
  { name: 'a limit that is not a number', request: ({ auth }) => ({ url: '/v1/vms?limit=many', headers: auth }), status: 400, code: 'invalid', path: 'limit' },
  { name: 'a limit out of range', request: ({ auth }) => ({ url: '/v1/vms?limit=0', headers: auth }), status: 400, code: 'invalid', path: 'limit' },
  { name: 'an unknown query parameter', request: ({ auth }) => ({ url: '/v1/vms?colour=red', headers: auth }), status: 400, code: 'invalid', path: 'colour' },
  { name: 'a project that is not a DNS label', request: ({ auth }) => ({ url: '/v1/vms?project=Bad_Project', headers: auth }), status: 400, code: 'invalid', path: 'project' },
  { name: 'a stale If-Match', request: ({ auth }, o) => ({ method: 'PATCH', url: '/v1/vms/web-1', headers: { ...auth, 'if-match': `"${o.revision - 1}"` }, payload: { labels: { a: 'b' } } }), status: 412, code: 'precondition_failed', path: 'If-Match' },
  { name: 'a stale revision in a PUT body', request: ({ auth }, o) => json(auth, 'PUT', '/v1/vms/web-1', { ...o, revision: o.revision - 1, labels: { a: 'b' } }), status: 412, code: 'precondition_failed', path: '/revision' },
  { name: 'a malformed If-Match', request: ({ auth }) => ({ method: 'DELETE', url: '/v1/vms/web-1', headers: { ...auth, 'if-match': 'yesterday' } }), status: 400, code: 'invalid', path: 'If-Match' },
  { name: 'a changed read-only field in a PUT body', request: ({ auth }, o) => json(auth, 'PUT', '/v1/vms/web-1', { ...o, createdAt: '2000-01-01T00:00:00.000Z' }), status: 400, code: 'invalid', path: '/createdAt' },
  { name: 'an X-Crowd-Reason over 1024 characters', request: ({ auth }) => ({ method: 'DELETE', url: '/v1/vms/web-1', headers: { ...auth, 'x-crowd-reason': 'r'.repeat(1025) } }), status: 400, code: 'invalid', path: 'X-Crowd-Reason' },
  { name: 'a project on a cluster-scoped kind', request: ({ auth }) => json(auth, 'POST', '/v1/sites', { name: 'berlin', project: 'default', spec: {} }), status: 400, code: 'invalid', path: '/project' },
  { name: 'a rollback to a revision in the future', request: ({ auth }) => json(auth, 'POST', '/v1/vms/web-1/rollback', { revision: 9999 }), status: 400, code: 'invalid', path: 'revision' },
  { name: 'a rollback body with an unknown field', request: ({ auth }) => json(auth, 'POST', '/v1/vms/web-1/rollback', { revision: 1, force: true }), status: 400, code: 'invalid', path: '/force' },
  { name: 'a merge patch of a read-only field', request: ({ auth }) => json(auth, 'PATCH', '/v1/vms/web-1', { name: 'web-9' }), status: 400, code: 'invalid', path: '/name' },
  { name: 'a merge patch producing an invalid label', request: ({ auth }) => json(auth, 'PATCH', '/v1/vms/web-1', { labels: { 'bad key!': 'x' } }), status: 400, code: 'invalid', path: '/labels/bad key!' },
  { name: 'a status that breaks the status schema', request: ({ auth }) => json(auth, 'PUT', '/v1/vms/web-1/status', { phase: 'dancing' }), status: 400, code: 'invalid', path: '/phase' },
  { name: 'invalid JSON', request: ({ auth }) => ({ method: 'POST', url: '/v1/vms', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"name": "web-2",' }), status: 400, code: 'invalid', path: '/' },
  { name: 'a prototype-poisoning body', request: ({ auth }) => ({ method: 'POST', url: '/v1/vms', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"name":"web-2","__proto__":{"x":1},"spec":{}}' }), status: 400, code: 'invalid', path: '/' },
  { name: 'a body that is not JSON', request: ({ auth }) => ({ method: 'POST', url: '/v1/vms', headers: { ...auth, 'content-type': 'text/plain' }, payload: 'name=web-2' }), status: 400, code: 'invalid', path: 'Content-Type' },
  { name: 'a missing body', request: ({ auth }) => ({ method: 'POST', url: '/v1/vms', headers: auth }), status: 400, code: 'invalid', path: '/' },
  { name: 'a history diff with from above to', request: ({ auth }) => ({ url: '/v1/vms/web-1/diff?from=5&to=4', headers: auth }), status: 400, code: 'invalid', path: 'to' },
  { name: 'an unknown kind', request: ({ auth }) => json(auth, 'POST', '/v1/gizmos', { name: 'g', spec: {} }), status: 404, code: 'not_found' },
  { name: 'an unknown id', request: ({ auth }) => ({ method: 'DELETE', url: '/v1/vms/vm_01JD0000000000000000000000', headers: auth }), status: 404, code: 'not_found' },
  { name: 'an unknown name', request: ({ auth }) => json(auth, 'PUT', '/v1/vms/web-9', vm({ name: undefined })), status: 404, code: 'not_found' },
  { name: 'an object in another project', request: ({ auth }) => ({ url: '/v1/vms/web-1?project=other', headers: auth }), status: 404, code: 'not_found' },
  { name: 'a missing token', request: () => json({}, 'POST', '/v1/vms', vm({ name: 'web-2' })), status: 401, code: 'unauthenticated' },
  { name: 'a wrong token', request: () => json({ authorization: 'Bearer crowd_wrong' }, 'DELETE', '/v1/vms/web-1', undefined), status: 401, code: 'unauthenticated' },
  { name: 'a credential without the right', request: () => json({ authorization: 'Bearer viewer' }, 'DELETE', '/v1/vms/web-1', undefined), status: 403, code: 'forbidden' },
  { name: 'a watch from a revision in the future', request: ({ auth }) => ({ url: '/v1/watch?revision=9999', headers: auth }), status: 400, code: 'invalid', path: 'revision' },
  { name: 'a watch from a compacted revision', request: ({ auth }) => ({ url: '/v1/watch?revision=1', headers: auth }), status: 410, code: 'gone', path: 'revision' },
  { name: 'a watch resuming from a compacted Last-Event-ID', request: ({ auth }) => ({ url: '/v1/watch', headers: { ...auth, accept: 'text/event-stream', 'last-event-id': '1' } }), status: 410, code: 'gone', path: 'revision' },
  { name: 'a watch of an unknown kind', request: ({ auth }) => ({ url: '/v1/watch?kinds=vm,gizmo', headers: auth }), status: 400, code: 'invalid', path: 'kinds' },
];

test('bad input gets its error code and the path of the problem, and changes nothing', async () => {
  const clock = new FakeClock();
  const t = await buildTestApp({ clock, authenticators: [viewer] });
  try {
    await t.seed();
    await t.store.create({ kind: 'project', name: 'other', spec: {} }, { author: 't' });
    const res = await t.app.inject(json(t.auth, 'POST', '/v1/vms', vm()));
    assert.equal(res.statusCode, 201, res.body);
    const existing = res.json<AnyObject>();
    await t.app.inject(json(t.auth, 'PATCH', '/v1/vms/web-1', { labels: { v: '2' } }));
    // Compact everything older than the newest revision, so revision 1 is gone for watches.
    clock.advance(8 * 24 * 3600 * 1000);
    await t.store.compact({ retainRevisions: 1, retainMs: 0 });
    assert.ok((await t.store.compactedRevision()) > 1);
    const current = (await t.app.inject({ url: '/v1/vms/web-1', headers: t.auth })).json<AnyObject>();

    for (const c of cases) {
      const before = await t.store.revision();
      const r = await t.app.inject(c.request(t, current));
      assert.equal(r.statusCode, c.status, `${c.name}: ${r.body}`);
      const body = r.json<ErrorBody>();
      assert.equal(body.error.code, c.code, c.name);
      assert.ok(body.error.message.length > 0, c.name);
      if (c.path !== undefined) {
        assert.ok(body.error.details?.some((d) => d.path === c.path), `${c.name}: expected a detail at "${c.path}", got ${JSON.stringify(body.error.details)}`);
      }
      assert.equal(await t.store.revision(), before, `${c.name} changed the store`);
    }
    assert.equal(existing.name, 'web-1');
    assert.deepEqual((await t.app.inject({ url: '/v1/vms/web-1', headers: t.auth })).json(), current);
  } finally {
    await t.close();
  }
});

test('a 401 tells the client how to authenticate and never echoes the credential', async () => {
  const t = await buildTestApp();
  try {
    const r = await t.app.inject({ url: '/v1/vms', headers: { authorization: 'Bearer crowd_secret-value' } });
    assert.equal(r.statusCode, 401);
    assert.match(String(r.headers['www-authenticate']), /^Bearer/);
    assert.doesNotMatch(r.body, /secret-value/);
  } finally {
    await t.close();
  }
});

test('an unexpected failure is a generic internal error without a stack or detail', async () => {
  const t = await buildTestApp();
  try {
    t.store.listStored = async () => {
      throw new Error('disk on fire at /var/lib/crowd/secret.db');
    };
    const r = await t.app.inject({ url: '/v1/vms', headers: t.auth });
    assert.equal(r.statusCode, 500);
    assert.deepEqual(r.json(), { error: { code: 'internal', message: 'Internal server error: see the server log' } });
  } finally {
    await t.close();
  }
});

test('a request Node cannot parse still gets the JSON error shape', async () => {
  const t = await buildTestApp();
  try {
    const url = new URL(await t.app.listen({ host: '127.0.0.1', port: 0 }));
    const socket = connect(Number(url.port), '127.0.0.1');
    socket.end('GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\x01: y\r\n\r\n');
    let text = '';
    for await (const chunk of socket) text += String(chunk);
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.deepEqual(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)), { error: { code: 'invalid', message: 'Cannot read request: it is not valid HTTP' } });
  } finally {
    await t.close();
  }
});
