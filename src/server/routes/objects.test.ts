import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyObject } from '../../api/object.ts';
import type { HistoryList } from '../../api/wire.ts';
import { buildTestApp } from '../test-app.ts';

const vmBody = { name: 'web-1', spec: { image: 'debian', machineType: 'small' } };

test('concurrent writers with the same If-Match: exactly one wins, the others get 412', async () => {
  const t = await buildTestApp();
  try {
    await t.seed();
    const created = (await t.app.inject({ method: 'POST', url: '/v1/vms', headers: t.auth, payload: vmBody })).json<AnyObject>();
    const writers = 12;
    const results = await Promise.all(
      Array.from({ length: writers }, (_, i) =>
        t.app.inject({
          method: 'PUT',
          url: '/v1/vms/web-1',
          headers: { ...t.auth, 'if-match': `"${created.revision}"` },
          payload: { ...vmBody, labels: { writer: String(i) } },
        }),
      ),
    );
    const codes = results.map((r) => r.statusCode).sort();
    assert.deepEqual(codes, [200, ...Array<number>(writers - 1).fill(412)]);
    const winner = results.find((r) => r.statusCode === 200)!.json<AnyObject>();
    assert.equal(winner.revision, created.revision + 1);
    const live = (await t.app.inject({ url: '/v1/vms/web-1', headers: t.auth })).json<AnyObject>();
    assert.deepEqual(live.labels, winner.labels);
    const history = (await t.app.inject({ url: '/v1/vms/web-1/history', headers: t.auth })).json<HistoryList>();
    assert.equal(history.items.length, 2);
  } finally {
    await t.close();
  }
});

test('concurrent merge patches without If-Match all apply, none is lost', async () => {
  const t = await buildTestApp();
  try {
    await t.seed();
    await t.app.inject({ method: 'POST', url: '/v1/vms', headers: t.auth, payload: vmBody });
    const results = await Promise.all(
      ['a', 'b', 'c', 'd'].map((k) => t.app.inject({ method: 'PATCH', url: '/v1/vms/web-1', headers: t.auth, payload: { labels: { [k]: 'x' } } })),
    );
    assert.deepEqual(results.map((r) => r.statusCode), [200, 200, 200, 200]);
    const live = (await t.app.inject({ url: '/v1/vms/web-1', headers: t.auth })).json<AnyObject>();
    assert.deepEqual(live.labels, { a: 'x', b: 'x', c: 'x', d: 'x' });
  } finally {
    await t.close();
  }
});

test('a PUT may repeat the read-only fields unchanged, and its revision field acts as If-Match', async () => {
  const t = await buildTestApp();
  try {
    await t.seed();
    const created = (await t.app.inject({ method: 'POST', url: '/v1/vms', headers: t.auth, payload: vmBody })).json<AnyObject>();
    const edited = { ...created, labels: { edited: 'yes' } };
    const ok = await t.app.inject({ method: 'PUT', url: `/v1/vms/${created.id}`, headers: t.auth, payload: edited });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json<AnyObject>().labels, { edited: 'yes' });
    // The same body again carries the old revision: stale.
    const again = await t.app.inject({ method: 'PUT', url: `/v1/vms/${created.id}`, headers: t.auth, payload: { ...edited, labels: { edited: 'twice' } } });
    assert.equal(again.statusCode, 412, again.body);
    const clash = await t.app.inject({
      method: 'PUT',
      url: '/v1/vms/web-1',
      headers: { ...t.auth, 'if-match': `"${created.revision + 1}"` },
      payload: { ...edited, revision: created.revision },
    });
    assert.equal(clash.statusCode, 400, clash.body);
  } finally {
    await t.close();
  }
});

test('a PUT without labels or metadata clears them, as a replacement should', async () => {
  const t = await buildTestApp();
  try {
    await t.seed();
    await t.app.inject({ method: 'POST', url: '/v1/vms', headers: t.auth, payload: { ...vmBody, labels: { a: 'b' }, metadata: { x: 1 } } });
    const res = await t.app.inject({ method: 'PUT', url: '/v1/vms/web-1', headers: t.auth, payload: { spec: vmBody.spec } });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json<AnyObject>().labels, {});
    assert.deepEqual(res.json<AnyObject>().metadata, {});
  } finally {
    await t.close();
  }
});
