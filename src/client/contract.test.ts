import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { ApiError } from '../api/errors.ts';
import type { WatchEvent } from '../api/wire.ts';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';
import { Client } from './client.ts';

// The client against the real app over real HTTP, so the two cannot drift apart.
let t: TestApp;
let client: Client;
let baseUrl: string;

before(async () => {
  t = await buildTestApp();
  await t.seed();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  client = new Client({ baseUrl, authorization: `Bearer ${testToken}` });
});
after(() => t.close());

const vmSpec = { image: 'debian', machineType: 'small', nics: [{ network: 'lan' }] };

async function rejectsWith(p: Promise<unknown>, code: string, pathPart?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pathPart) assert.ok(e.details?.some((d) => d.path.includes(pathPart)), JSON.stringify(e.details));
    return true;
  });
}

test('create, get, get at a revision, and list with selector and where round-trip typed objects', async () => {
  const a = await client.vms.create({ name: 'c-a', labels: { env: 'prod' }, spec: vmSpec });
  await client.vms.create({ name: 'c-b', labels: { env: 'dev' }, spec: { ...vmSpec, resources: { cpus: 2 } } });
  assert.equal(a.kind, 'vm');
  assert.equal(a.project, 'default');
  assert.deepEqual((await client.vms.get('c-a')).spec, a.spec);
  assert.equal((await client.vms.get(a.id)).name, 'c-a');
  const updated = await client.vms.update('c-a', { ...a, spec: { ...vmSpec, resources: { cpus: 3 } } }, { ifMatch: a.revision, reason: 'more cpus' });
  assert.equal((await client.vms.get('c-a', { revision: a.revision })).spec.resources, undefined);
  assert.equal(updated.spec.resources?.cpus, 3);
  const prod = await client.vms.list({ selector: 'env=prod' });
  assert.deepEqual(prod.items.map((v) => v.name), ['c-a']);
  const two = await client.vms.list({ where: ['spec.resources.cpus=2'] });
  assert.deepEqual(two.items.map((v) => v.name), ['c-b']);
  assert.ok(prod.revision >= updated.revision);
});

test('listAll follows continue tokens across pages', async () => {
  for (const n of ['p-1', 'p-2', 'p-3']) await client.images.create({ name: n, labels: { page: 'yes' }, spec: {} });
  const first = await client.images.list({ selector: 'page=yes', limit: 2 });
  assert.equal(first.items.length, 2);
  assert.ok(first.continue);
  const names: string[] = [];
  for await (const i of client.images.listAll({ selector: 'page=yes', limit: 2 })) names.push(i.name);
  assert.deepEqual(names.sort(), ['p-1', 'p-2', 'p-3']);
});

test('a stale If-Match is precondition_failed and a merge patch changes only what it names', async () => {
  const v = await client.vms.create({ name: 'c-patch', labels: { a: '1', b: '2' }, spec: vmSpec });
  const p = await client.vms.patch('c-patch', { labels: { b: null, c: '3' } }, { ifMatch: v.revision });
  assert.deepEqual(p.labels, { a: '1', c: '3' });
  await rejectsWith(client.vms.update('c-patch', { spec: vmSpec }, { ifMatch: v.revision }), 'precondition_failed');
  await rejectsWith(client.vms.patch('c-patch', { spec: { power: 'stopped' } }, { ifMatch: v.revision }), 'precondition_failed');
});

test('history, diff and rollback describe and restore earlier revisions with author and reason', async () => {
  const v1 = await client.vms.create({ name: 'c-hist', spec: vmSpec });
  const v2 = await client.vms.update('c-hist', { spec: { ...vmSpec, power: 'stopped' } }, { reason: 'maintenance' });
  const h = await client.vms.history('c-hist');
  assert.deepEqual(h.items.map((e) => e.revision), [v2.revision, v1.revision]);
  assert.equal(h.items[0]!.reason, 'maintenance');
  assert.equal(h.items[0]!.author, 'admin');
  const d = await client.vms.diff('c-hist', { from: v1.revision, to: v2.revision });
  assert.deepEqual(d.changes, [{ op: 'add', path: '/spec/power', to: 'stopped' }]);
  const r = await client.vms.rollback('c-hist', { revision: v1.revision, reason: 'undo' });
  assert.ok(r.revision > v2.revision);
  assert.equal(r.spec.power, undefined);
});

test('putStatus writes status, and delete answers with the last version', async () => {
  await client.vms.create({ name: 'c-del', spec: vmSpec });
  const s = await client.vms.putStatus('c-del', { phase: 'running', node: 'n1' });
  assert.equal(s.status.phase, 'running');
  const last = await client.vms.delete('c-del', { reason: 'done' });
  assert.equal(last.name, 'c-del');
  await rejectsWith(client.vms.get('c-del'), 'not_found');
});

test('cluster-scoped kinds ignore the project and project-scoped ones honour it', async () => {
  await client.projects.create({ name: 'other', spec: {} });
  await client.machineTypes.get('small', { project: 'other' });
  await client.images.create({ name: 'only-other', spec: {} }, { project: 'other' });
  await rejectsWith(client.images.get('only-other'), 'not_found');
  assert.equal((await client.images.get('only-other', { project: 'other' })).project, 'other');
  const all = await client.images.list({ project: '*', selector: '' });
  assert.ok(all.items.some((i) => i.project === 'other'));
});

test('errors come back as ApiError with code and detail paths', async () => {
  await rejectsWith(client.vms.create({ name: 'Bad_Name', spec: vmSpec }), 'invalid', '/name');
  await rejectsWith(client.vms.create({ name: 'c-noimg', spec: { ...vmSpec, image: 'missing' } }), 'invalid', '/spec/image');
  await rejectsWith(client.resource('vm').create({ name: 'c-x', spec: vmSpec, extra: 1 }), 'invalid');
  await rejectsWith(new Client({ baseUrl }).vms.list(), 'unauthenticated');
  await rejectsWith(new Client({ baseUrl, authorization: 'Bearer wrong' }).vms.list(), 'unauthenticated');
});

test('bad selectors, filters and reasons are refused locally before anything is sent', async () => {
  let calls = 0;
  const counting = new Client({ baseUrl, fetch: (async () => { calls++; throw new Error('unreachable'); }) as typeof fetch });
  await rejectsWith(counting.vms.list({ selector: 'env in (' }), 'invalid', 'selector');
  await rejectsWith(counting.vms.list({ where: ['labels.env=prod'] }), 'invalid', 'where');
  await rejectsWith(counting.vms.delete('x', { reason: 'line\nbreak' }), 'invalid', 'reason');
  assert.equal(calls, 0);
});

test('an unreachable server is unavailable with the URL in the message', async () => {
  await rejectsWith(new Client({ baseUrl: 'http://127.0.0.1:1' }).vms.list(), 'unavailable');
});

test('watch yields NDJSON events after a revision, filtered, until aborted', async () => {
  const start = (await client.vms.list()).revision;
  const ac = new AbortController();
  const seen: WatchEvent[] = [];
  const done = (async () => {
    for await (const e of client.vms.watch({ revision: start, selector: 'watch=yes', signal: ac.signal })) {
      if (e.type === 'bookmark') continue;
      seen.push(e);
      if (seen.length === 2) ac.abort();
    }
  })();
  await client.vms.create({ name: 'w-ignored', spec: vmSpec });
  const w = await client.vms.create({ name: 'w-1', labels: { watch: 'yes' }, spec: vmSpec });
  await client.vms.delete('w-1');
  await done;
  assert.deepEqual(seen.map((e) => [e.type, e.type === 'bookmark' ? '' : e.object.name]), [['put', 'w-1'], ['delete', 'w-1']]);
  assert.equal(seen[0]!.revision, w.revision);
});

test('a watch from a future revision fails with invalid before streaming', async () => {
  const now = (await client.vms.list()).revision;
  const it = client.watch({ kinds: ['vm'], revision: now + 1000 });
  await rejectsWith(it.next(), 'invalid');
});

test('the audit log lists mutating requests newest first and health needs no token', async () => {
  await client.images.create({ name: 'audited', spec: {} }, { reason: 'audit me' });
  const { items } = await client.audit({ limit: 5 });
  assert.ok(items.length > 0 && items.length <= 5);
  assert.equal(items[0]!.method, 'POST');
  assert.match(items[0]!.path, /^\/v1\/images/);
  const older = await client.audit({ limit: 1, before: items[0]!.id });
  assert.ok(older.items.every((e) => e.id < items[0]!.id));
  assert.deepEqual(await new Client({ baseUrl }).health(), { status: 'ok' });
});
