import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';
import { runCaptured } from './captured-io.ts';
import { removeNic } from './vm-nic.ts';

let t: TestApp;
let env: Record<string, string>;

before(async () => {
  t = await buildTestApp();
  await t.seed();
  await t.store.create({ kind: 'network', name: 'dmz', spec: { ipv4: { subnet: '10.9.0.0/24' } } }, { author: 'seed' });
  await t.store.create({ kind: 'firewall', name: 'web', spec: { rules: [] } }, { author: 'seed' });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  env = { CROWD_URL: `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`, CROWD_TOKEN: testToken, CROWD_CONFIG: '/nonexistent/crowd-config.yaml' };
});
after(() => t.close());

const crowd = (argv: string[]) => runCaptured(argv, { env });
async function ok(argv: string[]): Promise<string> {
  const r = await crowd(argv);
  assert.equal(r.code, 0, `crowd ${argv.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

test('removing a NIC picks it by network or index and refuses ambiguity with the choices', () => {
  const nics = [{ network: 'lan' }, { network: 'dmz' }, { network: 'lan' }];
  assert.deepEqual(removeNic(nics, 'v', 'dmz', undefined), [{ network: 'lan' }, { network: 'lan' }]);
  assert.deepEqual(removeNic(nics, 'v', undefined, 2), [{ network: 'lan' }, { network: 'dmz' }]);
  assert.throws(() => removeNic(nics, 'v', 'lan', undefined), /it has 2 on network "lan" \(NICs 0, 2\); pick one with --index/);
  assert.throws(() => removeNic(nics, 'v', 'nope', undefined), /it has none on network "nope"/);
  assert.throws(() => removeNic(nics, 'v', 'dmz', 0), /it has no such NIC on network "dmz"/);
  assert.throws(() => removeNic(nics, 'v', undefined, undefined), /Missing --network/);
  const assigned = [0, 1, 2].map((nic) => ({ nic, mac: `52:54:00:00:00:0${nic}` }));
  assert.deepEqual(removeNic(nics, 'v', undefined, 0, assigned), [{ network: 'dmz' }, { network: 'lan', mac: '52:54:00:00:00:02' }], 'a later NIC on the same network keeps its MAC written down');
  assert.deepEqual(removeNic(nics, 'v', 'dmz', undefined, assigned), [{ network: 'lan' }, { network: 'lan' }], 'no other NIC on that network: nothing to pin');
});

test('crowd vm nic add and remove edit the NIC list of a VM', async () => {
  await ok(['vm', 'create', 'nic-1', '--image', 'debian', '--machine-type', 'small', '--network', 'lan']);
  assert.match(await ok(['vm', 'nic', 'add', 'nic-1', '--network', 'dmz,ipv4=10.9.0.7,firewall=web']), /NIC on network "dmz" added/);
  let vm = JSON.parse(await ok(['vm', 'get', 'nic-1', '-o', 'json']));
  assert.deepEqual(vm.spec.nics, [{ network: 'lan' }, { network: 'dmz', ipv4: '10.9.0.7', firewalls: ['web'] }]);
  await ok(['vm', 'nic', 'remove', 'nic-1', '--network', 'lan']);
  vm = JSON.parse(await ok(['vm', 'get', 'nic-1', '-o', 'json']));
  assert.deepEqual(vm.spec.nics.map((n: { network: string }) => n.network), ['dmz']);
  const bad = await crowd(['vm', 'nic', 'add', 'nic-1', '--network', 'nope']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /nope/);
});

test('crowd network create takes a gateway mode, and refuses a gateway VM without mode vm', async () => {
  await ok(['network', 'create', 'iso', '--subnet', '10.44.0.0/24', '--gateway-mode', 'none', '--mtu', '1400', '--ipv6-prefix', 'fd44::/64', '--ipv6-mode', 'dhcpv6']);
  const net = JSON.parse(await ok(['network', 'get', 'iso', '-o', 'json']));
  assert.deepEqual(net.spec, { mtu: 1400, gateway: { mode: 'none' }, ipv4: { subnet: '10.44.0.0/24' }, ipv6: { mode: 'dhcpv6', prefix: 'fd44::/64' } });
  const bad = await crowd(['network', 'create', 'x', '--subnet', '10.45.0.0/24', '--gateway-vm', 'r1']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--gateway-vm: it needs --gateway-mode vm/);
});

test('crowd firewall create turns --rule and --geek-mode into rules', async () => {
  await ok(['firewall', 'create', 'ssh-in', '--rule', 'ingress accept tcp 22 0.0.0.0/0', '--rule', 'egress drop udp 53', '--geek-mode']);
  const fw = JSON.parse(await ok(['firewall', 'get', 'ssh-in', '-o', 'json']));
  assert.deepEqual(fw.spec, {
    rules: [
      { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['22'], remote: { cidrs: ['0.0.0.0/0'] } },
      { direction: 'egress', action: 'drop', protocol: 'udp', ports: ['53'] },
    ],
    geekMode: true,
  });
  const bad = await crowd(['firewall', 'create', 'bad', '--rule', 'ingress accept tcp 99999']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /99999/);
});
