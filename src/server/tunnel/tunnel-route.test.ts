import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { buildTestApp, type TestApp } from '../test-app.ts';

let t: TestApp;
let ws: string;
const creds: Record<string, string> = {};
const by = { author: 'test' };

before(async () => {
  t = await buildTestApp({ nodes: true });
  await t.seed();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  ws = `ws://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  for (const name of ['host-a', 'host-b']) {
    const { token } = await t.enrolment!.createJoinToken({}, 'admin');
    const out = await t.enrolment!.enrol({ joinToken: token, name, arch: 'x86_64', capacity: { cpus: 4, memoryMiB: 4096, diskGiB: 50 }, accel: 'tcg' });
    creds[name] = `Bearer ${out.credential}`;
  }
  for (const [vm, node] of [
    ['on-a', 'host-a'],
    ['on-b', 'host-b'],
  ] as const) {
    const o = await t.store.create({ kind: 'vm', name: vm, spec: { image: 'debian', machineType: 'small' } }, by);
    await t.store.updateStatus({ kind: 'vm', idOrName: o.id }, { phase: 'running', node }, by);
  }
  await t.store.create({ kind: 'vm', name: 'unplaced', spec: { image: 'debian', machineType: 'small' } }, by);
});
after(() => t.close());

/** Opens a WebSocket; resolves when open, rejects with the refused status. */
function open(path: string, authorization?: string): Promise<WebSocket> {
  const s = new WebSocket(`${ws}${path}`, authorization ? { headers: { authorization } } : {});
  return new Promise((resolve, reject) => {
    s.once('open', () => resolve(s));
    s.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body: JSON.parse(body) })));
    });
    s.once('error', reject);
  });
}

/** The next message on a socket. */
function next(s: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    s.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary }));
    s.once('close', () => reject(new Error('closed')));
  });
}

const closed = (s: WebSocket) => new Promise<number>((r) => (s.readyState === s.CLOSED ? r(-1) : s.once('close', (code) => r(code))));

const call = (method: 'GET' | 'POST', url: string, payload?: object) => t.app.inject({ method, url, headers: t.auth, ...(payload ? { payload } : {}) });

test('a node opens its own tunnel; another node, a user or no credential is refused', async () => {
  const own = await open('/v1/nodes/host-a/tunnel', creds['host-a']);
  own.close();
  await closed(own);
  // The node authorizer refuses another node's tunnel before the route sees it.
  await assert.rejects(open('/v1/nodes/host-b/tunnel', creds['host-a']), (e: { status: number; body: { error: { message: string } } }) => {
    assert.equal(e.status, 403);
    assert.match(e.body.error.message, /Cannot GET \/v1\/nodes\/:id\/tunnel: node "host-a" may only act on its own VMs and node/);
    return true;
  });
  await assert.rejects(open('/v1/nodes/host-a/tunnel', t.auth.authorization), (e: { status: number; body: { error: { message: string } } }) => {
    assert.equal(e.status, 403);
    assert.match(e.body.error.message, /Cannot open the tunnel of node "host-a": only that node's own credential may/);
    return true;
  });
  await assert.rejects(open('/v1/nodes/host-a/tunnel'), (e: { status: number }) => e.status === 401);
});

test('while a node is not connected, its VMs answer unavailable; unknown and unplaced VMs say so', async () => {
  for (const [method, path] of [
    ['POST', 'reboot'],
    ['POST', 'reset'],
    ['GET', 'console/log'],
    ['GET', 'pipe'],
  ] as const) {
    const r = await call(method, `/v1/vms/on-b/${path}`);
    assert.equal(r.statusCode, 503, path);
    assert.match(r.json().error.message, /vm "on-b": the agent of node "host-b" is not connected/);
  }
  await assert.rejects(open('/v1/vms/on-b/console', t.auth.authorization), (e: { status: number }) => e.status === 503);
  assert.equal((await call('POST', '/v1/vms/nope/reboot')).statusCode, 404);
  assert.equal((await call('POST', '/v1/vms/nope/pipe', { data: '' })).statusCode, 404);
  const unplaced = await call('POST', '/v1/vms/unplaced/reset');
  assert.equal(unplaced.statusCode, 409);
  assert.match(unplaced.json().error.message, /Cannot reset vm "unplaced": it is not placed on a node yet/);
});

test('pipe writes are checked before they travel: base64 only, at most 64 KiB', async () => {
  const big = await call('POST', '/v1/vms/on-b/pipe', { data: Buffer.alloc(64 * 1024 + 1).toString('base64') });
  assert.equal(big.statusCode, 413);
  assert.match(big.json().error.message, /one write holds at most 65536 bytes/);
  assert.equal((await call('POST', '/v1/vms/on-b/pipe', { data: 'not base64!' })).statusCode, 400);
  assert.equal((await call('POST', '/v1/vms/on-b/pipe', { data: 'aGk=', extra: 1 })).statusCode, 400);
});

test('start and stop set spec.power; a node may not use user actions', async () => {
  const stop = await call('POST', '/v1/vms/on-a/stop');
  assert.equal(stop.statusCode, 200);
  assert.equal(stop.json().spec.power, 'stopped');
  assert.equal((await call('POST', '/v1/vms/on-a/start')).json().spec.power, 'running');
  const r = await t.app.inject({ method: 'POST', url: '/v1/vms/on-a/reboot', headers: { authorization: creds['host-a']! } });
  assert.equal(r.statusCode, 403);
  const log = await t.app.inject({ method: 'GET', url: '/v1/vms/on-a/console/log', headers: { authorization: creds['host-a']! } });
  assert.equal(log.statusCode, 403);
});

test('requests, answers, errors and console bytes travel over the tunnel', async () => {
  const agent = await open('/v1/nodes/host-a/tunnel', creds['host-a']);
  try {
    const vm = await t.store.get({ kind: 'vm', idOrName: 'on-a' });
    const reboot = call('POST', '/v1/vms/on-a/reboot');
    const req = JSON.parse((await next(agent)).data.toString());
    assert.deepEqual({ op: req.op, vm: req.vm }, { op: 'reboot', vm: vm.id });
    agent.send(JSON.stringify({ id: req.id, op: 'reply' }));
    assert.equal((await reboot).statusCode, 202);
    assert.deepEqual((await reboot).json(), { action: 'reboot', vm: 'on-a', node: 'host-a' });

    const reset = call('POST', '/v1/vms/on-a/reset');
    const req2 = JSON.parse((await next(agent)).data.toString());
    agent.send(JSON.stringify({ id: req2.id, op: 'reply', error: { code: 'conflict', message: 'Cannot reset vm "on-a": vm is not running' } }));
    assert.equal((await reset).statusCode, 409);
    assert.equal((await reset).json().error.message, 'Cannot reset vm "on-a": vm is not running');

    const user = open('/v1/vms/on-a/console', t.auth.authorization);
    const attach = JSON.parse((await next(agent)).data.toString());
    assert.equal(attach.op, 'console.attach');
    agent.send(JSON.stringify({ id: attach.id, op: 'reply' }));
    const session = await user;
    const frame = Buffer.alloc(4 + 5);
    frame.writeUInt32BE(attach.id, 0);
    frame.write('login', 4);
    agent.send(frame);
    assert.equal((await next(session)).data.toString(), 'login');
    session.send('root\n');
    const typed = (await next(agent)).data;
    assert.equal(typed.readUInt32BE(0), attach.id);
    assert.equal(typed.subarray(4).toString(), 'root\n');
    session.close();
    assert.deepEqual(JSON.parse((await next(agent)).data.toString()), { id: attach.id, op: 'end' });
  } finally {
    agent.close();
    await closed(agent);
  }
});

test("a revoked node's open tunnel is dropped at its next use", async () => {
  const { token } = await t.enrolment!.createJoinToken({}, 'admin');
  const out = await t.enrolment!.enrol({ joinToken: token, name: 'host-r', arch: 'x86_64', capacity: { cpus: 4, memoryMiB: 4096, diskGiB: 50 }, accel: 'tcg' });
  const vm = await t.store.create({ kind: 'vm', name: 'on-r', spec: { image: 'debian', machineType: 'small' } }, by);
  await t.store.updateStatus({ kind: 'vm', idOrName: vm.id }, { phase: 'running', node: 'host-r' }, by);
  const agent = await open('/v1/nodes/host-r/tunnel', `Bearer ${out.credential}`);
  assert.equal((await call('POST', '/v1/nodes/host-r/revoke')).statusCode, 200);
  const r = await call('POST', '/v1/vms/on-r/reboot');
  assert.equal(r.statusCode, 503);
  assert.match(r.json().error.message, /Cannot reboot vm "on-r": node "host-r" was revoked/);
  assert.equal(await closed(agent), 4001);
  await assert.rejects(open('/v1/nodes/host-r/tunnel', `Bearer ${out.credential}`), (e: { status: number }) => e.status === 401);
});

test('an agent that sends malformed frames loses its tunnel; the server carries on', async () => {
  for (const bad of ['{not json', JSON.stringify({ id: 1, op: 'reply', error: { code: 'bogus', message: 'x' } }), Buffer.from([1, 2])]) {
    const agent = await open('/v1/nodes/host-a/tunnel', creds['host-a']);
    const pending = call('POST', '/v1/vms/on-a/reset');
    await next(agent);
    agent.send(bad);
    assert.equal(await closed(agent), 1002);
    const r = await pending;
    assert.equal(r.statusCode, 503);
    assert.match(r.json().error.message, /on node "host-a"/);
  }
  assert.equal((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  assert.equal((await call('POST', '/v1/vms/on-a/reset')).statusCode, 503);
});
