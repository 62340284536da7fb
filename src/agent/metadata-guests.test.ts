import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import type { HostNetworkView } from '../api/kinds/network.ts';
import type { AnyObject } from '../api/object.ts';
import { silentLogger } from '../base/logger.ts';
import { missingRoot, missingTools } from '../base/require-tool.ts';
import { ExecRunner } from '../base/runner.ts';
import { MetadataService, type Connection, type Listen } from '../metadata/metadata-service.ts';
import { NamespacedRunner } from '../net/namespaced-runner.ts';
import { guestInfo, guestsByAddress, linkListen, MetadataGuests } from './metadata-guests.ts';
import { SecretStore } from './secret-store.ts';

const place = { region: 'crowd', availabilityZone: 'host-a' };

const vm = (id: string, name: string, project: string, addresses: unknown[], spec: Record<string, unknown> = {}): AnyObject =>
  ({
    id,
    name,
    kind: 'vm',
    project,
    spec: { image: 'debian-12', machineType: 'small', nics: [{ network: 'lan' }, { network: 'v6' }], ...spec },
    status: { node: 'a', addresses },
  }) as unknown as AnyObject;

const view: HostNetworkView = {
  networks: [
    { project: 'p', name: 'lan', vni: 1, peers: [], spec: { ipv4: { subnet: '10.1.0.0/24', dns: ['9.9.9.9'] }, mtu: 1400 } },
    { project: 'p', name: 'v6', vni: 2, peers: [], spec: { ipv6: { mode: 'slaac', prefix: 'fd00:1::/64' }, gateway: { mode: 'none' } } },
    { project: 'q', name: 'lan', vni: 3, peers: [], spec: { ipv4: { subnet: '10.1.0.0/24' }, gateway: { mode: 'vm', vm: 'r' } } },
  ],
  firewalls: [],
  members: [],
};

const web = vm('vm_1', 'web', 'p', [
  { nic: 1, mac: '52:54:00:00:00:02', ipv6: 'fd00:1::5054:ff:fe00:2' },
  { nic: 0, mac: '52:54:00:00:00:01', ipv4: '10.1.0.2' },
], { userData: '#cloud-config\n', sshKeys: ['ssh-ed25519 AAAA alice@laptop'], install: { mode: 'run', parameters: { role: 'web' } } });

const conn = (remoteAddress: string): Connection => ({ remoteAddress, remotePort: 40000, localAddress: '169.254.169.254', localPort: 80 });

test('a guest is described from its VM object and the network view, NICs in order with the pinned addresses', () => {
  assert.deepEqual(guestInfo(web, view, place), {
    instanceId: 'vm_1',
    name: 'web',
    hostname: 'web',
    project: 'p',
    region: 'crowd',
    availabilityZone: 'host-a',
    instanceType: 'small',
    imageId: 'debian-12',
    nics: [
      { mac: '52:54:00:00:00:01', ipv4: { address: '10.1.0.2', prefixLength: 24, gateway: '10.1.0.1', dhcp: true }, dns: ['9.9.9.9'], mtu: 1400 },
      { mac: '52:54:00:00:00:02', ipv6: { address: 'fd00:1::5054:ff:fe00:2', prefixLength: 64, slaac: true } },
    ],
    sshKeys: ['ssh-ed25519 AAAA alice@laptop'],
    userData: '#cloud-config\n',
    parameters: { public: { role: 'web' }, private: {}, secret: {} },
    launchIndex: 0,
    imdsTokenRequired: false,
  });
});

test('a VM whose network the view does not know yet still gets its MACs, without addresses', () => {
  assert.deepEqual(guestInfo(web, undefined, place).nics, [{ mac: '52:54:00:00:00:01' }, { mac: '52:54:00:00:00:02' }]);
});

test('an address held by two VMs (overlapping subnets of two projects) identifies neither', () => {
  const a = guestInfo(web, view, place);
  const b = guestInfo(vm('vm_2', 'db', 'q', [{ nic: 0, mac: '52:54:00:00:00:09', ipv4: '10.1.0.2' }]), view, place);
  const c = guestInfo(vm('vm_3', 'c', 'q', [{ nic: 0, mac: '52:54:00:00:00:0a', ipv4: '10.1.0.3' }]), view, place);
  const map = guestsByAddress([a, b, c]);
  assert.equal(map.has('10.1.0.2'), false);
  assert.equal(map.get('10.1.0.3'), c);
  assert.equal(map.get('fd00:1::5054:ff:fe00:2'), a);
  assert.equal(c.nics[0]!.ipv4!.gateway, '10.1.0.1', 'a VM-gateway network tells guests the router VM address');
});

test('callers are identified by source address only, the same object is returned until the VM changes, and deleted VMs are forgotten', async () => {
  const forgotten: string[] = [];
  let listens = 0;
  const guests = new MetadataGuests({ place, forget: (id) => forgotten.push(id), listen: async () => listens++, logger: silentLogger(), secrets: new SecretStore() });
  const db = vm('vm_2', 'db', 'p', [{ nic: 0, mac: '52:54:00:00:00:03', ipv4: '10.1.0.3' }]);
  await guests.update([web, db], view, false);
  assert.equal(listens, 0, 'nothing listens before the host network holds the address');
  const first = guests.identify(conn('10.1.0.2'));
  assert.equal(first?.instanceId, 'vm_1');
  assert.equal(guests.identify(conn('::ffff:10.1.0.3'))?.instanceId, 'vm_2');
  assert.equal(guests.identify(conn('10.1.0.99')), undefined);
  await guests.update([web, db], view, true);
  assert.equal(guests.identify(conn('10.1.0.2')), first);
  assert.equal(listens, 1);
  const renamed = { ...web, spec: { ...web.spec, userData: 'changed' } } as AnyObject;
  await guests.update([renamed], view, true);
  assert.notEqual(guests.identify(conn('10.1.0.2')), first);
  assert.equal(guests.identify(conn('10.1.0.2'))?.userData, 'changed');
  assert.equal(guests.identify(conn('10.1.0.3')), undefined);
  assert.deepEqual(forgotten, ['vm_2']);
  assert.equal(listens, 1, 'the service is bound once');
});

test('a failed bind is retried on the next update', async () => {
  let attempts = 0;
  const guests = new MetadataGuests({
    secrets: new SecretStore(),
    place,
    forget: () => undefined,
    listen: async () => {
      if (++attempts === 1) throw new Error('EADDRNOTAVAIL');
    },
    logger: silentLogger(),
  });
  await guests.update([web], view, true);
  await guests.update([web], view, true);
  await guests.update([web], view, true);
  assert.equal(attempts, 2);
});

test('a VM whose spec requires IMDS tokens gets a guest that the service answers 401 without a token, and 200 with one', async (t) => {
  assert.equal(guestInfo(web, view, place).imdsTokenRequired, false, 'token-less access is on by default');
  const strict = { ...web, spec: { ...web.spec, imds: { tokens: 'required' } } } as AnyObject;
  assert.equal(guestInfo(strict, view, place).imdsTokenRequired, true);
  const guests = new MetadataGuests({ secrets: new SecretStore(), place, forget: () => undefined, listen: async () => undefined, logger: silentLogger() });
  await guests.update([strict], view, true);
  // The loopback caller stands in for the guest's pinned address.
  const service = new MetadataService({ identify: (c) => guests.identify({ ...c, remoteAddress: '10.1.0.2' }) });
  const [bound] = await service.listen([{ host: '127.0.0.1', port: 0 }]);
  t.after(() => service.close());
  const base = `http://127.0.0.1:${bound!.port}`;
  assert.equal((await fetch(`${base}/latest/meta-data/instance-id`)).status, 401);
  const token = await (await fetch(`${base}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();
  const ok = await fetch(`${base}/latest/meta-data/instance-id`, { headers: { 'x-aws-ec2-metadata-token': token } });
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), 'vm_1');
});

test('on a bridge listener a caller is its pinned MAC\'s EUI-64 link-local or its assigned IPv6 on that bridge, and nothing else', async () => {
  const guests = new MetadataGuests({ place, forget: () => undefined, listen: async () => undefined, logger: silentLogger(), secrets: new SecretStore() });
  await guests.update([web], view, false);
  const on = (bridge: string, remoteAddress: string): Connection => ({ remoteAddress, remotePort: 40000, localAddress: `fe80::a9fe:a9fe%${bridge}`, localPort: 80, interface: bridge });
  const byMac = guests.identify(on('cb1', 'fe80::5054:ff:fe00:1%cb1'));
  assert.equal(byMac?.instanceId, 'vm_1');
  assert.equal(guests.identify(on('cb2', 'fe80::5054:ff:fe00:2%cb2')), byMac, 'the same guest object on its second NIC');
  assert.equal(guests.identify(on('cb2', 'fd00:1::5054:ff:fe00:2')), byMac);
  assert.equal(guests.identify(on('cb2', 'fe80::5054:ff:fe00:1%cb2')), undefined, 'a NIC\'s link-local on another bridge');
  assert.equal(guests.identify(on('cb1', 'fe80::dead%cb1')), undefined, 'an address no NIC was given');
  assert.equal(guests.identify(on('cb1', '10.1.0.2')), undefined, 'the IPv4 address does not count on the IPv6 listener');
  assert.equal(guests.identify(conn('fe80::5054:ff:fe00:1')), undefined, 'a link-local address without its bridge');
});

test('one IPv6 listener per bridge with guests opens once the network is ready and closes when the bridge goes, leaving the IPv4 one alone', async () => {
  const calls: string[] = [];
  const links = {
    listen: async (a: Listen[]) => (calls.push(`+${a.map((x) => `${x.host}/${x.interface}`).join()}`), []),
    unlisten: async (a: Pick<Listen, 'host' | 'port'>) => void calls.push(`-${a.host}`),
  };
  let listens = 0;
  const guests = new MetadataGuests({ place, forget: () => undefined, listen: async () => listens++, links, logger: silentLogger(), secrets: new SecretStore() });
  const db = vm('vm_2', 'db', 'p', [{ nic: 0, mac: '52:54:00:00:00:03', ipv4: '10.1.0.3' }], { nics: [{ network: 'lan' }] });
  await guests.update([web, db], view, false);
  assert.deepEqual(calls, [], 'nothing listens before the host network is applied');
  await guests.update([web, db], view, true);
  assert.deepEqual(calls.sort(), ['+fe80::a9fe:a9fe%cb1/cb1', '+fe80::a9fe:a9fe%cb2/cb2']);
  calls.length = 0;
  await guests.update([db], view, true);
  assert.deepEqual(calls, ['-fe80::a9fe:a9fe%cb2'], 'the bridge web alone used is left');
  await guests.update([db], view, true);
  assert.deepEqual(calls, ['-fe80::a9fe:a9fe%cb2'], 'nothing changes while the bridges stay');
  assert.equal(listens, 1, 'the IPv4 listener is bound once and never restarted');
  assert.deepEqual(linkListen('cb7'), { host: 'fe80::a9fe:a9fe%cb7', port: 80, interface: 'cb7' });
});

const kernelSkip = missingRoot() ?? missingTools('ip', 'sysctl');

test('a guest on a real bridge reads its own metadata at [fe80::a9fe:a9fe%eth0] and a spoofed source gets nothing', { skip: kernelSkip }, async (t) => {
  const root = new ExecRunner();
  const tag = `mg${process.pid}`;
  const [hostNs, guestNs] = [`${tag}h`, `${tag}g`];
  t.after(async () => {
    for (const ns of [hostNs, guestNs]) await root.run({ argv: ['ip', 'netns', 'del', ns] }).catch(() => undefined);
  });
  const host = new NamespacedRunner(root, hostNs);
  const guest = new NamespacedRunner(root, guestNs);
  for (const ns of [hostNs, guestNs]) await root.run({ argv: ['ip', 'netns', 'add', ns] });
  await guest.run({ argv: ['sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0'] });
  const lan: HostNetworkView = { networks: [{ project: 'p', name: 'lan', vni: 4242, peers: [], spec: { ipv6: { mode: 'slaac', prefix: 'fd00:42::/64' } } }], firewalls: [], members: [] };
  const mac = '52:54:00:42:00:01';
  const me = vm('vm_42', 'me', 'p', [{ nic: 0, mac, ipv6: 'fd00:42::5054:ff:fe42:1' }], { nics: [{ network: 'lan' }] });
  // What the agent's host network gives the bridge (the net layer adds it the same way, `nodad` pending there), and the VM's NIC on it.
  for (const argv of [
    ['ip', 'link', 'add', 'cb4242', 'type', 'bridge'],
    ['ip', 'link', 'set', 'cb4242', 'up'],
    ['ip', 'addr', 'add', 'fe80::a9fe:a9fe/64', 'dev', 'cb4242', 'nodad'],
    ['ip', 'link', 'add', 'mgtap', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guestNs],
    ['ip', 'link', 'set', 'mgtap', 'master', 'cb4242', 'up'],
  ])
    await host.run({ argv });
  await guest.run({ argv: ['ip', 'link', 'set', 'eth0', 'address', mac, 'up'] });

  // The agent's metadata side runs in the host namespace (a process binds in its own), fed each pass over IPC.
  const src = (f: string) => JSON.stringify(resolve(import.meta.dirname, '..', f));
  const script = `
    const { MetadataService } = await import(${src('metadata/metadata-service.ts')});
    const { MetadataGuests } = await import(${src('agent/metadata-guests.ts')});
    const { SecretStore } = await import(${src('agent/secret-store.ts')});
    const { silentLogger } = await import(${src('base/logger.ts')});
    const service = new MetadataService({ identify: (conn) => guests.identify(conn) });
    const guests = new MetadataGuests({ place: { region: 'crowd', availabilityZone: 'h' }, forget: (id) => service.forget(id), listen: async () => undefined, links: service, logger: silentLogger(), secrets: new SecretStore() });
    process.on('message', (m) => guests.update(m.vms, m.view, true).then(() => process.send('done'), (e) => process.send(String(e))));
    process.on('disconnect', () => service.close().then(() => process.exit(0)));`;
  const child = spawn('ip', ['netns', 'exec', hostNs, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: resolve(import.meta.dirname, '../..') });
  t.after(() => child.kill());
  const update = async (vms: AnyObject[]) => {
    child.send({ vms, view: lan });
    const [answer] = (await Promise.race([once(child, 'message'), once(child, 'exit').then(() => ['the metadata child exited'])])) as [string];
    assert.equal(answer, 'done');
  };
  /** GET from inside the guest, as cloud-init would (optionally from a chosen source address): "status body", or the error code. */
  const get = async (path: string, from?: string) => {
    const client = `require('http').get({ host: 'fe80::a9fe:a9fe%eth0', port: 80, path: ${JSON.stringify(path)}, ${from ? `localAddress: '${from}%eth0',` : ''} timeout: 5000 }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(r.statusCode + ' ' + b)); }).on('error', (e) => console.log(e.code));`;
    return (await guest.run({ argv: [process.execPath, '-e', client], timeoutMs: 20_000 })).stdout.trim();
  };

  await update([me]);
  assert.equal(await get('/latest/meta-data/instance-id'), '200 vm_42', 'the guest\'s own EUI-64 link-local source');
  assert.equal(JSON.parse((await get('/openstack/latest/meta_data.json')).slice(4)).uuid.length, 36);
  await guest.run({ argv: ['ip', 'addr', 'add', 'fe80::dead/64', 'dev', 'eth0', 'nodad'] });
  assert.equal(await get('/latest/meta-data/instance-id', 'fe80::dead'), '403 403 - Forbidden', 'a link-local source no NIC was given');
  await update([]);
  assert.equal(await get('/latest/meta-data/instance-id'), 'ECONNREFUSED', 'the last guest leaving the bridge closes its listener');
});
