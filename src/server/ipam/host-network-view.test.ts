import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { HostNetworkView } from '../../api/kinds/network.ts';
import { buildTestApp, type TestApp } from '../test-app.ts';
import { hostNetworkRoutes } from './host-network-view.ts';
import { nicFirewalls } from './network-index.ts';

let t: TestApp;
const auth: Record<string, string> = {};
const by = { author: 'test' };

const enrol = async (name: string) => {
  auth[name] = await t.enrol(name);
};

const call = (who: string, method: 'GET' | 'PUT', url: string, payload?: unknown) =>
  t.app.inject({ method, url, headers: { authorization: auth[who]! }, ...(payload !== undefined ? { payload: payload as object } : {}) });

before(async () => {
  t = await buildTestApp({ nodes: true, plugins: [hostNetworkRoutes(() => t.store)] });
  await t.seed();
  await t.store.create({ kind: 'firewall', name: 'admins', spec: { rules: [] } }, by);
  await t.store.create({ kind: 'firewall', name: 'web', spec: { rules: [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['22'], remote: { firewall: 'admins' } }] } }, by);
  await t.store.create({ kind: 'firewall', name: 'unused', spec: { rules: [] } }, by);
  await t.store.create({ kind: 'network', name: 'dmz', spec: { ipv4: { subnet: '10.9.0.0/24' }, firewalls: ['web'], vni: 42 } }, by);
  const vm = (name: string, nics: unknown[]) => t.store.create({ kind: 'vm', name, spec: { image: 'debian', machineType: 'small', nics } }, by);
  await vm('a1', [{ network: 'dmz' }]);
  await vm('b1', [{ network: 'dmz', firewalls: ['admins'] }]);
  await vm('c1', [{ network: 'lan', firewalls: ['unused'] }]);
  for (const n of ['host-a', 'host-b', 'host-c']) await enrol(n);
  const bind = (name: string, node: string, addresses: unknown[]) => t.store.updateStatus({ kind: 'vm', project: 'default', idOrName: name }, { phase: 'scheduled', node, addresses }, by);
  await bind('a1', 'host-a', [{ nic: 0, mac: '52:54:00:00:00:01', ipv4: '10.9.0.2' }]);
  await bind('b1', 'host-b', [{ nic: 0, mac: '52:54:00:00:00:02', ipv4: '10.9.0.3' }]);
  await bind('c1', 'host-c', [{ nic: 0, mac: '52:54:00:00:00:03', ipv4: '10.0.0.2' }]);
});
after(async () => t.close());

test('a node reports its underlay address in its status', async () => {
  for (const [n, ip] of [['host-a', '192.0.2.1'], ['host-b', '192.0.2.2'], ['host-c', '192.0.2.3']] as const) {
    const res = await call(n, 'PUT', `/v1/nodes/${n}/status`, { phase: 'ready', underlayIp: ip });
    assert.equal(res.statusCode, 200, res.body);
  }
});

test("a node's network view has its networks with VNI and peers, the firewalls on its NICs, and the members rules name", async () => {
  const res = await call('host-a', 'GET', '/v1/nodes/host-a/network');
  assert.equal(res.statusCode, 200, res.body);
  const view = res.json<HostNetworkView>();
  assert.deepEqual(view.networks.map((n) => [n.name, n.vni, n.peers]), [['dmz', 42, ['192.0.2.2']]]);
  assert.deepEqual(view.firewalls.map((f) => f.name), ['web']);
  assert.deepEqual(view.members, [{ project: 'default', firewall: 'admins', addresses: ['10.9.0.3'] }]);
  const c = (await call('host-c', 'GET', '/v1/nodes/host-c/network')).json<HostNetworkView>();
  assert.deepEqual(c.networks.map((n) => [n.name, n.peers]), [['lan', []]]);
  assert.deepEqual(c.firewalls.map((f) => f.name), ['unused']);
});

test("a node may not read another node's network view, nor the firewalls behind it", async () => {
  const res = await call('host-a', 'GET', '/v1/nodes/host-b/network');
  assert.equal(res.statusCode, 403);
  assert.match(res.json<{ error: { message: string } }>().error.message, /may only act on its own VMs and node/);
  assert.equal((await call('host-a', 'GET', '/v1/firewalls/admins')).statusCode, 403);
  const admin = await t.app.inject({ method: 'GET', url: '/v1/nodes/host-b/network', headers: t.auth });
  assert.equal(admin.statusCode, 200);
});

test('a firewall still attached cannot be deleted', async () => {
  const res = await t.app.inject({ method: 'DELETE', url: '/v1/firewalls/admins', headers: t.auth });
  assert.equal(res.statusCode, 409, res.body);
});

test('NIC firewalls are the network ones first, then the NIC ones, once each', () => {
  assert.deepEqual(nicFirewalls({ firewalls: ['b', 'a'] }, { firewalls: ['a', 'c'] }), ['a', 'c', 'b']);
});

test('a view asked for again shows a changed firewall, VM binding and network at once', async () => {
  const view = async () => (await call('host-a', 'GET', '/v1/nodes/host-a/network')).json<HostNetworkView>();
  assert.deepEqual((await view()).firewalls.map((f) => f.spec.rules[0]?.ports), [['22']]);
  await t.store.update({ kind: 'firewall', idOrName: 'web' }, { labels: {}, metadata: {}, spec: { rules: [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['443'], remote: { firewall: 'admins' } }] } }, by);
  assert.deepEqual((await view()).firewalls.map((f) => f.spec.rules[0]?.ports), [['443']]);
  const b1 = await t.store.get({ kind: 'vm', idOrName: 'b1' });
  await t.store.updateStatus({ kind: 'vm', idOrName: 'b1' }, { ...b1.status, node: 'host-c', addresses: [{ nic: 0, mac: '52:54:00:00:00:02', ipv4: '10.9.0.7' }] }, by);
  const moved = await view();
  assert.deepEqual(moved.networks.map((n) => n.peers), [['192.0.2.3']]);
  assert.deepEqual(moved.members, [{ project: 'default', firewall: 'admins', addresses: ['10.9.0.7'] }]);
  const dmz = await t.store.get({ kind: 'network', idOrName: 'dmz' });
  await t.store.update({ kind: 'network', idOrName: 'dmz' }, { labels: {}, metadata: {}, spec: { ...dmz.spec, firewalls: [] } }, by);
  assert.deepEqual(await view(), { networks: [{ project: 'default', name: 'dmz', spec: { ...dmz.spec, firewalls: [] }, vni: 42, peers: ['192.0.2.3'] }], firewalls: [], members: [] });
});
