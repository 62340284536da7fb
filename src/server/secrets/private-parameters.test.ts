import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyObject } from '../../api/object.ts';
import type { Diff, HistoryList, ObjectList, WatchEvent } from '../../api/wire.ts';
import { buildTestApp } from '../test-app.ts';
import { privateMark, redactDiff, redactJson, restorePrivate } from './private-parameters.ts';

const secretish = 'db-password-5d1c9e';
const vmBody = { name: 'web-1', spec: { image: 'debian', machineType: 'small', install: { mode: 'run', parameters: { role: 'web' }, privateParameters: { dbPassword: secretish } } } };

function installOf(o: AnyObject): { parameters?: Record<string, string>; privateParameters?: Record<string, string> } {
  return (o.spec as { install: { parameters?: Record<string, string>; privateParameters?: Record<string, string> } }).install;
}

test('a private value never appears in create, get, list, PUT, PATCH, history or diff answers, and survives an edit round trip', async () => {
  const t = await buildTestApp();
  try {
    await t.seed();
    const answers: string[] = [];
    const created = await t.app.inject({ method: 'POST', url: '/v1/vms', headers: t.auth, payload: vmBody });
    assert.equal(created.statusCode, 201, created.body);
    answers.push(created.body);
    const shown = (await t.app.inject({ url: '/v1/vms/web-1', headers: t.auth })).json<AnyObject>();
    assert.deepEqual(installOf(shown).privateParameters, { dbPassword: privateMark });
    assert.deepEqual(installOf(shown).parameters, { role: 'web' });
    // `crowd vm edit`: the shown document goes back with one change.
    const edited = await t.app.inject({ method: 'PUT', url: '/v1/vms/web-1', headers: t.auth, payload: { ...shown, labels: { env: 'prod' } } });
    assert.equal(edited.statusCode, 200, edited.body);
    answers.push(edited.body);
    const patched = await t.app.inject({
      method: 'PATCH',
      url: '/v1/vms/web-1',
      headers: { ...t.auth, 'content-type': 'application/merge-patch+json' },
      payload: { spec: { install: { privateParameters: { dbPassword: privateMark, apiKey: 'key-77a1' } } } },
    });
    assert.equal(patched.statusCode, 200, patched.body);
    answers.push(patched.body);
    answers.push((await t.app.inject({ url: '/v1/vms', headers: t.auth })).body);
    const history = await t.app.inject({ url: '/v1/vms/web-1/history', headers: t.auth });
    assert.equal(history.json<HistoryList>().items.length, 3);
    answers.push(history.body);
    const diff = await t.app.inject({ url: `/v1/vms/web-1/diff?from=${created.json<AnyObject>().revision}`, headers: t.auth });
    assert.equal(diff.statusCode, 200, diff.body);
    assert.deepEqual(
      diff.json<Diff>().changes.filter((c) => c.path.includes('privateParameters')),
      [{ op: 'add', path: '/spec/install/privateParameters/apiKey', to: privateMark }],
    );
    answers.push(diff.body);
    for (const body of answers) {
      assert.ok(!body.includes(secretish) && !body.includes('key-77a1'), `a private value leaked: ${body}`);
    }
    const stored = await t.store.get({ kind: 'vm', idOrName: 'web-1' });
    assert.deepEqual(installOf(stored).privateParameters, { dbPassword: secretish, apiKey: 'key-77a1' });
    assert.deepEqual(stored.labels, { env: 'prod' });
    const listed = (await t.app.inject({ url: '/v1/vms', headers: t.auth })).json<ObjectList>();
    assert.deepEqual(installOf(listed.items[0] as AnyObject).privateParameters, { dbPassword: privateMark, apiKey: privateMark });
  } finally {
    await t.close();
  }
});

test('the mark with no stored value to keep is refused and stores nothing', async () => {
  const t = await buildTestApp();
  try {
    await t.seed();
    const spec = { ...vmBody.spec, install: { mode: 'run', privateParameters: { dbPassword: privateMark } } };
    const res = await t.app.inject({ method: 'POST', url: '/v1/vms', headers: t.auth, payload: { name: 'web-2', spec } });
    assert.equal(res.statusCode, 400, res.body);
    assert.match(res.body, /privateParameters\/dbPassword/);
    assert.equal((await t.store.list({ kind: 'vm', project: 'default' })).items.length, 0);
  } finally {
    await t.close();
  }
});

test('watch events show private values masked to users and raw to the VM host agent', async () => {
  const t = await buildTestApp({ nodes: true });
  try {
    await t.seed();
    const node = await t.enrol('host-1');
    const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const from = await t.store.revision();
    const firstPut = async (authorization: string, query: string): Promise<WatchEvent> => {
      const ctl = new AbortController();
      const res = await fetch(`${url}/v1/watch?kinds=vm&revision=${from}${query}`, { headers: { authorization }, signal: AbortSignal.any([ctl.signal, AbortSignal.timeout(10_000)]) });
      assert.equal(res.status, 200);
      let text = '';
      const decoder = new TextDecoder();
      const reader = res.body!.getReader();
      try {
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          text += decoder.decode(r.value, { stream: true });
          const put = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as WatchEvent).find((e) => e.type === 'put');
          if (put) return put;
        }
        throw new Error('watch ended without an event');
      } finally {
        ctl.abort();
      }
    };
    await t.store.create({ kind: 'vm', name: 'web-1', spec: vmBody.spec }, { author: 'test' });
    await t.store.updateStatus({ kind: 'vm', idOrName: 'web-1' }, { phase: 'scheduled', node: 'host-1' }, { author: 'test' });
    const user = await firstPut(t.auth.authorization, '');
    assert.ok(!JSON.stringify(user).includes(secretish));
    assert.deepEqual(installOf((user as { object: AnyObject }).object).privateParameters, { dbPassword: privateMark });
    const agent = await firstPut(node, '&where=status.node%3Dhost-1');
    assert.deepEqual(installOf((agent as { object: AnyObject }).object).privateParameters, { dbPassword: secretish });
    const got = (await t.app.inject({ url: '/v1/vms/web-1', headers: { authorization: node } })).json<AnyObject>();
    assert.deepEqual(installOf(got).privateParameters, { dbPassword: secretish });
  } finally {
    await t.close();
  }
});

test('list pages show private values masked to users and raw to the VM host agent, beside VMs without any', async () => {
  const t = await buildTestApp({ nodes: true });
  try {
    await t.seed();
    const node = await t.enrol('host-1');
    for (const [name, spec] of [['a-plain', { image: 'debian', machineType: 'small' }], ['b-private', vmBody.spec]] as const) {
      await t.store.create({ kind: 'vm', name, spec }, { author: 'test' });
      await t.store.updateStatus({ kind: 'vm', idOrName: name }, { phase: 'scheduled', node: 'host-1' }, { author: 'test' });
    }
    const page = async (authorization: string) => {
      const res = await t.app.inject({ url: '/v1/vms?project=*&where=status.node%3Dhost-1&limit=1000', headers: { authorization } });
      assert.equal(res.statusCode, 200, res.body);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      return res;
    };
    const user = await page(t.auth.authorization);
    assert.ok(!user.body.includes(secretish), `a private value leaked: ${user.body}`);
    const shown = user.json<ObjectList>();
    assert.deepEqual(shown.items.map((o) => [(o as AnyObject).name, installOf(o as AnyObject)?.privateParameters]), [
      ['a-plain', undefined],
      ['b-private', { dbPassword: privateMark }],
    ]);
    assert.equal(shown.revision, await t.store.revision());
    const agent = (await page(node)).json<ObjectList>();
    assert.deepEqual(installOf(agent.items[1] as AnyObject).privateParameters, { dbPassword: secretish });
  } finally {
    await t.close();
  }
});

test('redactJson masks private values however the text spells their key, and keeps other text as it is', () => {
  const plain = JSON.stringify({ kind: 'vm', spec: { install: { parameters: { a: 'b' } } } });
  assert.equal(redactJson(plain), plain);
  const escaped = '{"kind":"vm","spec":{"install":{"priv\\u0061teParameters":{"k":"s3cret"}}}}';
  assert.deepEqual(JSON.parse(redactJson(escaped)), { kind: 'vm', spec: { install: { privateParameters: { k: privateMark } } } });
  const network = JSON.stringify({ kind: 'network', spec: { privateParameters: { k: 'v' } } });
  assert.equal(redactJson(network), network);
});

test('restorePrivate keeps plain values and fills marks from the stored spec', () => {
  const spec = { install: { mode: 'run', privateParameters: { a: privateMark, b: 'new' } } };
  assert.deepEqual(restorePrivate('vm', spec, { install: { privateParameters: { a: 'old-a', b: 'old-b' } } }), {
    install: { mode: 'run', privateParameters: { a: 'old-a', b: 'new' } },
  });
  assert.equal(restorePrivate('network', spec, undefined), spec);
});

test('redactDiff masks private values in changes at, above and below the parameter map', () => {
  assert.deepEqual(
    redactDiff([
      { op: 'replace', path: '/spec/install/privateParameters/a', from: 'x', to: 'y' },
      { op: 'add', path: '/spec/install', to: { mode: 'run', privateParameters: { a: 'x' } } },
      { op: 'remove', path: '/spec/install/privateParameters', from: { a: 'x' } },
      { op: 'replace', path: '/spec/install/parameters/a', from: 'x', to: 'y' },
    ]),
    [
      { op: 'replace', path: '/spec/install/privateParameters/a', from: privateMark, to: privateMark },
      { op: 'add', path: '/spec/install', to: { mode: 'run', privateParameters: { a: privateMark } } },
      { op: 'remove', path: '/spec/install/privateParameters', from: { a: privateMark } },
      { op: 'replace', path: '/spec/install/parameters/a', from: 'x', to: 'y' },
    ],
  );
});
