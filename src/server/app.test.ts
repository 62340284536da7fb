import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kinds } from '../api/kinds.ts';
import type { AnyObject } from '../api/object.ts';
import type { AuditEntry, Diff, HistoryList, ObjectList } from '../api/wire.ts';
import { buildTestApp, type TestApp } from './test-app.ts';

async function withApp(fn: (t: TestApp) => Promise<void>): Promise<void> {
  const t = await buildTestApp();
  try {
    await t.seed();
    await fn(t);
  } finally {
    await t.close();
  }
}

const vmBody = (name: string, labels: Record<string, string> = {}) => ({
  name,
  labels,
  metadata: { team: 'infra' },
  spec: { image: 'debian', machineType: 'small', nics: [{ network: 'lan' }] },
});

test('health answers without credentials', async () => {
  await withApp(async ({ app }) => {
    const res = await app.inject({ url: '/healthz' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
  });
});

test('a created object comes back with its revision as ETag and a Location', async () => {
  await withApp(async ({ app, auth }) => {
    const res = await app.inject({ method: 'POST', url: '/v1/vms', headers: auth, payload: vmBody('web-1', { env: 'prod' }) });
    assert.equal(res.statusCode, 201, res.body);
    const vm = res.json<AnyObject>();
    assert.equal(vm.name, 'web-1');
    assert.equal(vm.project, 'default');
    assert.equal(vm.updatedBy, 'admin');
    assert.equal(res.headers.etag, `"${vm.revision}"`);
    assert.equal(res.headers.location, `/v1/vms/${vm.id}`);

    const byId = await app.inject({ url: `/v1/vms/${vm.id}`, headers: auth });
    const byName = await app.inject({ url: '/v1/vms/web-1', headers: auth });
    assert.deepEqual(byId.json(), vm);
    assert.deepEqual(byName.json(), vm);
    assert.equal(byName.headers.etag, `"${vm.revision}"`);
  });
});

test('lists filter by label selector and field filters, page with continue, and span projects with "*"', async () => {
  await withApp(async ({ app, auth, store }) => {
    await store.create({ kind: 'project', name: 'other', spec: {} }, { author: 't' });
    for (const [name, env] of [['a', 'prod'], ['b', 'dev'], ['c', 'prod']] as const) {
      const res = await app.inject({ method: 'POST', url: '/v1/vms', headers: auth, payload: vmBody(name, { env }) });
      assert.equal(res.statusCode, 201, res.body);
    }
    const elsewhere = await app.inject({ method: 'POST', url: '/v1/images?project=other', headers: auth, payload: { name: 'alpine', spec: { arch: 'x86_64' } } });
    assert.equal(elsewhere.statusCode, 201, elsewhere.body);

    const prod = await app.inject({ url: '/v1/vms?selector=env%20in%20(prod)&where=metadata.team=infra&where=spec.image=debian', headers: auth });
    assert.equal(prod.statusCode, 200, prod.body);
    assert.deepEqual(prod.json<ObjectList>().items.map((o) => o.name), ['a', 'c']);

    const page1 = (await app.inject({ url: '/v1/vms?limit=2', headers: auth })).json<ObjectList>();
    assert.equal(page1.items.length, 2);
    assert.ok(page1.continue);
    const page2 = (await app.inject({ url: `/v1/vms?limit=2&continue=${encodeURIComponent(page1.continue)}`, headers: auth })).json<ObjectList>();
    assert.deepEqual(page2.items.map((o) => o.name), ['c']);
    assert.equal(page2.continue, undefined);

    const all = (await app.inject({ url: '/v1/images?project=*', headers: auth })).json<ObjectList>();
    assert.deepEqual(all.items.map((o) => `${o.project}/${o.name}`).sort(), ['default/debian', 'other/alpine']);
    const other = (await app.inject({ url: '/v1/images?project=other', headers: auth })).json<ObjectList>();
    assert.deepEqual(other.items.map((o) => o.name), ['alpine']);
  });
});

test('PUT replaces labels, metadata and spec, honours If-Match and keeps the reason in the history', async () => {
  await withApp(async ({ app, auth }) => {
    const vm = (await app.inject({ method: 'POST', url: '/v1/vms', headers: auth, payload: vmBody('web-1', { env: 'prod' }) })).json<AnyObject>();
    const put = await app.inject({
      method: 'PUT',
      url: '/v1/vms/web-1',
      headers: { ...auth, 'if-match': `"${vm.revision}"`, 'x-crowd-reason': 'bigger box' },
      payload: { ...vm, labels: { env: 'dev' }, spec: { ...vm.spec, resources: { cpus: 2 } } },
    });
    assert.equal(put.statusCode, 200, put.body);
    const updated = put.json<AnyObject>();
    assert.deepEqual(updated.labels, { env: 'dev' });
    assert.deepEqual(updated.spec.resources, { cpus: 2 });
    assert.equal(put.headers.etag, `"${updated.revision}"`);

    const history = (await app.inject({ url: '/v1/vms/web-1/history', headers: auth })).json<HistoryList>();
    assert.deepEqual(history.items.map((h) => h.revision), [updated.revision, vm.revision]);
    assert.equal(history.items[0]!.reason, 'bigger box');
    assert.equal(history.items[0]!.author, 'admin');
  });
});

test('PATCH merges a JSON merge patch sent as application/merge-patch+json or application/json', async () => {
  await withApp(async ({ app, auth }) => {
    await app.inject({ method: 'POST', url: '/v1/vms', headers: auth, payload: vmBody('web-1', { env: 'prod', tier: 'web' }) });
    const merge = await app.inject({
      method: 'PATCH',
      url: '/v1/vms/web-1',
      headers: { ...auth, 'content-type': 'application/merge-patch+json' },
      payload: JSON.stringify({ labels: { env: null, owner: 'ops' }, spec: { power: 'stopped' } }),
    });
    assert.equal(merge.statusCode, 200, merge.body);
    assert.deepEqual(merge.json<AnyObject>().labels, { tier: 'web', owner: 'ops' });
    assert.equal(merge.json<AnyObject>().spec.power, 'stopped');
    assert.equal(merge.json<AnyObject>().spec.image, 'debian');

    const plain = await app.inject({ method: 'PATCH', url: '/v1/vms/web-1', headers: auth, payload: { metadata: null } });
    assert.equal(plain.statusCode, 200, plain.body);
    assert.deepEqual(plain.json<AnyObject>().metadata, {});
  });
});

test('status is written through its own route and kept by spec updates', async () => {
  await withApp(async ({ app, auth }) => {
    await app.inject({ method: 'POST', url: '/v1/vms', headers: auth, payload: vmBody('web-1') });
    const st = await app.inject({ method: 'PUT', url: '/v1/vms/web-1/status', headers: auth, payload: { phase: 'running', node: 'host-1' } });
    assert.equal(st.statusCode, 200, st.body);
    assert.deepEqual(st.json<AnyObject>().status, { phase: 'running', node: 'host-1' });
    const patched = await app.inject({ method: 'PATCH', url: '/v1/vms/web-1', headers: auth, payload: { labels: { a: 'b' } } });
    assert.deepEqual(patched.json<AnyObject>().status, { phase: 'running', node: 'host-1' });
  });
});

test('an old revision can be read, diffed against the live object and rolled back to', async () => {
  await withApp(async ({ app, auth }) => {
    const v1 = (await app.inject({ method: 'POST', url: '/v1/vms', headers: auth, payload: vmBody('web-1', { env: 'prod' }) })).json<AnyObject>();
    const v2 = (await app.inject({ method: 'PATCH', url: '/v1/vms/web-1', headers: auth, payload: { labels: { env: 'dev' } } })).json<AnyObject>();

    const old = await app.inject({ url: `/v1/vms/web-1?revision=${v1.revision}`, headers: auth });
    assert.equal(old.statusCode, 200, old.body);
    assert.deepEqual(old.json<AnyObject>().labels, { env: 'prod' });

    const diff = (await app.inject({ url: `/v1/vms/web-1/diff?from=${v1.revision}`, headers: auth })).json<Diff>();
    assert.deepEqual(diff, { from: v1.revision, to: v2.revision, changes: [{ op: 'replace', path: '/labels/env', from: 'prod', to: 'dev' }] });
    const explicit = (await app.inject({ url: `/v1/vms/web-1/diff?from=${v1.revision}&to=${v1.revision}`, headers: auth })).json<Diff>();
    assert.deepEqual(explicit.changes, []);

    const rb = await app.inject({ method: 'POST', url: '/v1/vms/web-1/rollback', headers: auth, payload: { revision: v1.revision, reason: 'dev was a mistake' } });
    assert.equal(rb.statusCode, 200, rb.body);
    const v3 = rb.json<AnyObject>();
    assert.ok(v3.revision > v2.revision);
    assert.deepEqual(v3.labels, { env: 'prod' });
    const history = (await app.inject({ url: '/v1/vms/web-1/history?limit=1', headers: auth })).json<HistoryList>();
    assert.equal(history.items[0]!.reason, `rollback to revision ${v1.revision}: dev was a mistake`);
    assert.ok(history.continue);
  });
});

test('delete answers with the last version, after which the object is gone', async () => {
  await withApp(async ({ app, auth }) => {
    await app.inject({ method: 'POST', url: '/v1/vms', headers: auth, payload: vmBody('web-1') });
    const del = await app.inject({ method: 'DELETE', url: '/v1/vms/web-1', headers: auth });
    assert.equal(del.statusCode, 200, del.body);
    assert.equal(del.json<AnyObject>().name, 'web-1');
    assert.equal((await app.inject({ url: '/v1/vms/web-1', headers: auth })).statusCode, 404);
  });
});

test('cluster-scoped kinds have no project', async () => {
  await withApp(async ({ app, auth }) => {
    const site = await app.inject({ method: 'POST', url: '/v1/sites', headers: auth, payload: { name: 'berlin', spec: {} } });
    assert.equal(site.statusCode, 201, site.body);
    assert.equal(site.json<AnyObject>().project, undefined);
    const projects = (await app.inject({ url: '/v1/projects', headers: auth })).json<ObjectList>();
    assert.deepEqual(projects.items.map((p) => p.name), ['default']);
  });
});

test('every mutating request is audited with who, from where, what and the result, failures included', async () => {
  await withApp(async ({ app, auth }) => {
    await app.inject({ method: 'POST', url: '/v1/vms', headers: auth, payload: vmBody('web-1') });
    await app.inject({ method: 'POST', url: '/v1/vms', headers: auth, payload: vmBody('web-1') });
    await app.inject({ method: 'DELETE', url: '/v1/vms/web-1', headers: { authorization: 'Bearer wrong' } });
    await app.inject({ url: '/v1/vms', headers: auth });

    const res = await app.inject({ url: '/v1/audit?limit=10', headers: auth });
    assert.equal(res.statusCode, 200, res.body);
    const items = res.json<{ items: AuditEntry[] }>().items.map(({ id: _id, time: _time, ...rest }) => rest);
    assert.deepEqual(items, [
      { who: 'anonymous', source: '127.0.0.1', method: 'DELETE', path: '/v1/vms/web-1', kind: 'vm', target: 'web-1', status: 401, result: 'unauthenticated' },
      { who: 'admin', authenticator: 'static-token', source: '127.0.0.1', method: 'POST', path: '/v1/vms', kind: 'vm', target: 'web-1', status: 409, result: 'already_exists' },
      { who: 'admin', authenticator: 'static-token', source: '127.0.0.1', method: 'POST', path: '/v1/vms', kind: 'vm', target: 'web-1', status: 201, result: 'ok' },
    ]);
    assert.doesNotMatch(res.body, /Bearer|wrong/, 'no credential reaches the audit log');
    const older = (await app.inject({ url: `/v1/audit?limit=1&before=${res.json<{ items: AuditEntry[] }>().items[0]!.id}`, headers: auth })).json<{ items: AuditEntry[] }>();
    assert.equal(older.items[0]!.status, 409);
  });
});

test('metrics count requests by route and status and report the store revision', async () => {
  await withApp(async ({ app, auth, store }) => {
    await app.inject({ url: '/v1/vms', headers: auth });
    await app.inject({ url: '/v1/vms' });
    const res = await app.inject({ url: '/metrics', headers: auth });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(res.body, /crowd_http_requests_total\{method="GET",route="\/v1\/vms",status="200"\} 1/);
    assert.match(res.body, /crowd_http_requests_total\{method="GET",route="\/v1\/vms",status="401"\} 1/);
    assert.match(res.body, new RegExp(`crowd_store_revision ${await store.revision()}\\n`));
    assert.match(res.body, /crowd_watchers_active 0/);
    assert.equal((await app.inject({ url: '/metrics' })).statusCode, 401);
  });
});

test('the OpenAPI document is OpenAPI 3 and lists every route with its methods', async () => {
  await withApp(async ({ app }) => {
    const res = await app.inject({ url: '/v1/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json<{ openapi: string; paths: Record<string, Record<string, { responses: object }>>; components: { schemas: Record<string, unknown> } }>();
    assert.match(doc.openapi, /^3\.\d+\.\d+$/);
    const expected = new Map<string, string[]>([
      ['/healthz', ['get']],
      ['/metrics', ['get']],
      ['/v1/openapi.json', ['get']],
      ['/v1/audit', ['get']],
      ['/v1/watch', ['get']],
    ]);
    for (const k of kinds) {
      expected.set(`/v1/${k.plural}`, ['get', 'post']);
      expected.set(`/v1/${k.plural}/{id}`, ['delete', 'get', 'patch', 'put']);
      expected.set(`/v1/${k.plural}/{id}/status`, ['put']);
      expected.set(`/v1/${k.plural}/{id}/history`, ['get']);
      expected.set(`/v1/${k.plural}/{id}/diff`, ['get']);
      expected.set(`/v1/${k.plural}/{id}/rollback`, ['post']);
    }
    assert.deepEqual(Object.keys(doc.paths).sort(), [...expected.keys()].sort());
    for (const [path, methods] of expected) {
      assert.deepEqual(Object.keys(doc.paths[path]!).sort(), methods, path);
      for (const m of methods) assert.ok(doc.paths[path]![m]!.responses, `${m} ${path} documents its responses`);
    }
    // Every $ref points at a schema the document defines.
    for (const ref of JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
      assert.ok(doc.components.schemas[ref[1]!], `components.schemas.${ref[1]} exists`);
    }
  });
});
