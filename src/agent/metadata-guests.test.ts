import { SecretStore } from './secret-store.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostNetworkView } from '../api/kinds/network.ts';
import type { AnyObject } from '../api/object.ts';
import { silentLogger } from '../base/logger.ts';
import { MetadataService, type Connection } from '../metadata/metadata-service.ts';
import { guestInfo, guestsByAddress, MetadataGuests } from './metadata-guests.ts';

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
