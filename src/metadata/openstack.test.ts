import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exampleGuest } from './example-guest.ts';
import { renderGuestDocuments } from './guest-documents.ts';
import { guestUuid } from './guest-info.ts';

const docs = renderGuestDocuments(exampleGuest());
const text = (key: string) => docs.get(key)?.body.toString('utf8');
const json = (key: string) => JSON.parse(text(key)!);

test('/openstack lists the versions cloud-init knows and latest', () => {
  assert.equal(text('openstack'), '2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n2016-10-06\n2017-02-22\n2018-08-27\nlatest');
  assert.equal(text('openstack/latest'), 'meta_data.json\nnetwork_data.json\nuser_data\nvendor_data.json\nvendor_data2.json');
});

test('meta_data.json carries identity, keys, public parameters and no private or secret one', () => {
  assert.deepEqual(json('openstack/latest/meta_data.json'), {
    uuid: guestUuid('vm_01JTESTGUEST0000000000000A'),
    name: 'web-1',
    hostname: 'web-1',
    public_keys: { 'alice@example': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOne alice@example' },
    keys: [{ name: 'alice@example', type: 'ssh', data: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOne alice@example' }],
    meta: { role: 'web', crowd_instance_id: 'vm_01JTESTGUEST0000000000000A' },
    availability_zone: 'site-1a',
    launch_index: 0,
    project_id: 'default',
    devices: [],
  });
});

test('the OpenStack uuid is a stable RFC 4122 version-5 UUID of the instance id', () => {
  const u = guestUuid('vm_01JTESTGUEST0000000000000A');
  assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(u, guestUuid('vm_01JTESTGUEST0000000000000A'));
  assert.notEqual(u, guestUuid('vm_01JTESTGUEST0000000000000B'));
});

test('network_data.json has one link per NIC and one network per address, with routes and DNS', () => {
  assert.deepEqual(json('openstack/latest/network_data.json'), {
    links: [
      { id: 'tap0', type: 'phy', ethernet_mac_address: '52:54:00:12:34:56', mtu: 1450, vif_id: 'vm_01JTESTGUEST0000000000000A-0' },
      { id: 'tap1', type: 'phy', ethernet_mac_address: '52:54:00:ab:cd:ef', vif_id: 'vm_01JTESTGUEST0000000000000A-1' },
    ],
    networks: [
      {
        id: 'network0',
        type: 'ipv4_dhcp',
        link: 'tap0',
        ip_address: '10.0.0.5',
        netmask: '255.255.255.0',
        routes: [{ network: '0.0.0.0', netmask: '0.0.0.0', gateway: '10.0.0.1' }],
        network_id: 'nic0-ipv4',
        services: [{ type: 'dns', address: '10.0.0.1' }],
      },
      {
        id: 'network1',
        type: 'ipv6',
        link: 'tap0',
        ip_address: 'fd00:1::5',
        netmask: 'ffff:ffff:ffff:ffff::',
        routes: [{ network: '::', netmask: '::', gateway: 'fd00:1::1' }],
        network_id: 'nic0-ipv6',
        services: [],
      },
      {
        id: 'network2',
        type: 'ipv4',
        link: 'tap1',
        ip_address: '192.168.7.9',
        netmask: '255.255.255.0',
        routes: [],
        network_id: 'nic1-ipv4',
        services: [],
      },
    ],
    services: [{ type: 'dns', address: '10.0.0.1' }],
  });
});

test('SLAAC IPv6 becomes an ipv6_slaac network', () => {
  const g = exampleGuest({ nics: [{ mac: '52:54:00:00:00:01', ipv6: { address: 'fd00::9', prefixLength: 64, slaac: true } }] });
  const nd = JSON.parse(renderGuestDocuments(g).get('openstack/latest/network_data.json')!.body.toString());
  assert.equal(nd.networks[0].type, 'ipv6_slaac');
});

test('vendor data goes under cloud-init in vendor_data2.json only', () => {
  assert.deepEqual(json('openstack/latest/vendor_data2.json'), { 'cloud-init': '#cloud-config\npackage_update: false\n' });
  assert.deepEqual(json('openstack/latest/vendor_data.json'), {});
  const none = renderGuestDocuments(exampleGuest({ vendorData: undefined }));
  assert.equal(none.get('openstack/latest/vendor_data2.json')?.body.toString(), '{}');
});

test('user_data is served as given and missing when the VM has none', () => {
  assert.equal(text('openstack/latest/user_data'), '#cloud-config\nruncmd:\n  - echo hello\n');
  assert.equal(renderGuestDocuments(exampleGuest({ userData: undefined })).get('openstack/latest/user_data'), undefined);
});
