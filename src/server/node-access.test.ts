import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyObject } from '../api/object.ts';
import { buildTestApp, type TestApp } from './test-app.ts';

let t: TestApp;
let a: string;
let b: string;
const by = { author: 'test' };


const bind = async (vm: string, node: string) => {
  const v = await t.store.get({ kind: 'vm', idOrName: vm });
  await t.store.updateStatus({ kind: 'vm', idOrName: vm }, { phase: 'scheduled', node }, by);
  return v;
};

before(async () => {
  t = await buildTestApp({ nodes: true });
  await t.seed();
  await t.store.create({ kind: 'machine-type', name: 'unused', spec: { cpus: 1, memoryMiB: 128, diskGiB: 1 } }, by);
  await t.store.create({ kind: 'project', name: 'other', spec: {} }, by);
  await t.store.create({ kind: 'image', project: 'other', name: 'alpine', spec: {} }, by);
  await t.store.create({ kind: 'vm', name: 'mine', spec: { image: 'debian', machineType: 'small', nics: [{ network: 'lan' }] } }, by);
  await t.store.create({ kind: 'vm', name: 'theirs', spec: { image: 'debian', machineType: 'small' } }, by);
  await t.store.create({ kind: 'vm', project: 'other', name: 'mine-too', spec: { image: 'alpine', machineType: 'small' } }, by);
  a = await t.enrol('host-a');
  b = await t.enrol('host-b');
  await bind('mine', 'host-a');
  await bind('theirs', 'host-b');
  const other = await t.store.get({ kind: 'vm', project: 'other', idOrName: 'mine-too' });
  await t.store.updateStatus({ kind: 'vm', idOrName: other.id }, { phase: 'scheduled', node: 'host-a' }, by);
});
after(async () => t.close());

const call = (auth: string, method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: Record<string, unknown>) =>
  t.app.inject({ method, url, headers: { authorization: auth }, ...(payload !== undefined ? { payload } : {}) });

test('a node reads only its own VMs, in every project, and what they reference', async () => {
  const list = await call(a, 'GET', '/v1/vms?project=*');
  assert.equal(list.statusCode, 200);
  assert.deepEqual(list.json<{ items: AnyObject[] }>().items.map((v) => v.name).sort(), ['mine', 'mine-too']);
  const defaultOnly = await call(a, 'GET', '/v1/vms');
  assert.deepEqual(defaultOnly.json<{ items: AnyObject[] }>().items.map((v) => v.name), ['mine']);
  assert.equal((await call(a, 'GET', '/v1/vms/mine')).statusCode, 200);
  assert.equal((await call(a, 'GET', '/v1/machine-types/small')).statusCode, 200);
  assert.equal((await call(a, 'GET', '/v1/images/debian')).statusCode, 200);
  assert.equal((await call(a, 'GET', '/v1/networks/lan')).statusCode, 200);
  assert.equal((await call(a, 'GET', '/v1/images/alpine?project=other')).statusCode, 200);
  assert.equal((await call(a, 'GET', '/v1/nodes/host-a')).statusCode, 200);
});

test("everything else is 403: other nodes' VMs, unreferenced objects, other nodes, lists, history, writes", async () => {
  const vm = await t.store.get({ kind: 'vm', idOrName: 'theirs' });
  const forbidden: [string, 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE', string, Record<string, unknown>?][] = [
    ['another node\'s VM', 'GET', '/v1/vms/theirs'],
    ['another node\'s VM by id', 'GET', `/v1/vms/${vm.id}`],
    ['another node\'s VM status', 'PUT', '/v1/vms/theirs/status', { phase: 'running', node: 'host-a' }],
    ['an unreferenced machine type', 'GET', '/v1/machine-types/unused'],
    ['listing machine types', 'GET', '/v1/machine-types'],
    ['listing nodes', 'GET', '/v1/nodes'],
    ['another node', 'GET', '/v1/nodes/host-b'],
    ['another node\'s status', 'PUT', '/v1/nodes/host-b/status', { phase: 'ready' }],
    ['creating a VM', 'POST', '/v1/vms', { name: 'sneaky', spec: { image: 'debian', machineType: 'small' } }],
    ['changing its own VM\'s spec', 'PATCH', '/v1/vms/mine', { labels: { x: 'y' } }],
    ['deleting its own VM', 'DELETE', '/v1/vms/mine'],
    ['its VM\'s history', 'GET', '/v1/vms/mine/history'],
    ['rebinding its VM elsewhere', 'PUT', '/v1/vms/mine/status', { phase: 'running', node: 'host-b' }],
    ['the audit log', 'GET', '/v1/audit'],
    ['watching every kind', 'GET', '/v1/watch'],
    ['revoking a node', 'POST', '/v1/nodes/host-b/revoke'],
    ['renewing another node\'s credential', 'POST', '/v1/nodes/host-b/credential'],
    ['minting join tokens', 'POST', '/v1/nodes/join-tokens', {}],
    ['a missing VM', 'GET', '/v1/vms/ghost'],
  ];
  const rev = await t.store.revision();
  for (const [what, method, url, body] of forbidden) {
    const res = await call(a, method, url, body);
    assert.equal(res.statusCode, 403, `${what}: ${res.statusCode} ${res.body}`);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'forbidden', what);
  }
  assert.equal(await t.store.revision(), rev, 'nothing changed');
});

test('a node writes its own VMs\' status and its own node status, and renews its credential', async () => {
  const res = await call(a, 'PUT', '/v1/vms/mine/status', { phase: 'running', node: 'host-a' });
  assert.equal(res.statusCode, 200, res.body);
  const own = await call(a, 'PUT', '/v1/nodes/host-a/status', { phase: 'ready', lastSeen: new Date().toISOString(), accel: 'tcg' });
  assert.equal(own.statusCode, 200, own.body);
  const renewed = await call(a, 'POST', '/v1/nodes/host-a/credential');
  assert.equal(renewed.statusCode, 200, renewed.body);
  const fresh = `Bearer ${renewed.json<{ credential: string }>().credential}`;
  assert.equal((await call(fresh, 'GET', '/v1/vms/mine')).statusCode, 200);
});

test('revoking one node locks out only that node', async () => {
  const res = await t.app.inject({ method: 'POST', url: '/v1/nodes/host-b/revoke', headers: t.auth });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal((await call(b, 'GET', '/v1/vms/theirs')).statusCode, 401);
  assert.equal((await call(a, 'GET', '/v1/vms/mine')).statusCode, 200);
});

test('enrolment refuses a reused token and malformed bodies without creating anything', async () => {
  const { token } = await t.enrolment!.createJoinToken({}, 'admin');
  const body = { joinToken: token, name: 'host-c', arch: 'x86_64', capacity: { cpus: 1, memoryMiB: 512, diskGiB: 5 }, accel: 'tcg' };
  assert.equal((await t.app.inject({ method: 'POST', url: '/v1/nodes/enrol', payload: { ...body, extra: 1 } })).statusCode, 400);
  assert.equal((await t.app.inject({ method: 'POST', url: '/v1/nodes/enrol', payload: { ...body, name: 'Bad_Name' } })).statusCode, 400);
  assert.equal((await t.app.inject({ method: 'POST', url: '/v1/nodes/enrol', payload: body })).statusCode, 201);
  const again = await t.app.inject({ method: 'POST', url: '/v1/nodes/enrol', payload: { ...body, name: 'host-d' } });
  assert.equal(again.statusCode, 401);
  assert.equal((await t.app.inject({ method: 'GET', url: '/v1/nodes/host-d', headers: t.auth })).statusCode, 404);
});
