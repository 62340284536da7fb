import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exampleGuest } from './example-guest.ts';
import { renderGuestDocuments } from './guest-documents.ts';

const docs = renderGuestDocuments(exampleGuest());
const text = (key: string) => docs.get(key)?.body.toString('utf8');

test('the root lists the dated EC2 versions cloud-init probes and latest', () => {
  const versions = text('')!.split('\n');
  for (const v of ['2009-04-04', '2016-09-02', '2018-09-24', '2021-03-23', 'latest']) assert.ok(versions.includes(v), v);
});

test('a version directory lists dynamic, meta-data and user-data', () => {
  assert.equal(text('latest'), 'dynamic/\nmeta-data/\nuser-data');
});

test('meta-data lists leaves and directories with a trailing slash, sorted', () => {
  assert.equal(
    text('latest/meta-data'),
    'ami-id\nami-launch-index\nhostname\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nmac\nnetwork/\nplacement/\npublic-keys/',
  );
  assert.equal(text('latest/meta-data/instance-id'), 'vm_01JTESTGUEST0000000000000A');
  assert.equal(text('latest/meta-data/instance-type'), 'small');
  assert.equal(text('latest/meta-data/ami-id'), 'debian-12');
  assert.equal(text('latest/meta-data/hostname'), 'web-1');
  assert.equal(text('latest/meta-data/local-hostname'), 'web-1');
  assert.equal(text('latest/meta-data/local-ipv4'), '10.0.0.5');
  assert.equal(text('latest/meta-data/mac'), '52:54:00:12:34:56');
  assert.equal(text('latest/meta-data/placement'), 'availability-zone\nregion');
  assert.equal(text('latest/meta-data/placement/availability-zone'), 'site-1a');
  assert.equal(text('latest/meta-data/placement/region'), 'site-1');
});

test('public keys are listed as index=name and served at index/openssh-key', () => {
  assert.equal(text('latest/meta-data/public-keys'), '0=alice@example');
  assert.equal(text('latest/meta-data/public-keys/0'), 'openssh-key');
  assert.equal(text('latest/meta-data/public-keys/0/openssh-key'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOne alice@example');
});

test('every NIC appears under network/interfaces/macs with its addresses and subnets', () => {
  const base = 'latest/meta-data/network/interfaces/macs';
  assert.equal(text(base), '52:54:00:12:34:56/\n52:54:00:ab:cd:ef/');
  assert.equal(
    text(`${base}/52:54:00:12:34:56`),
    'device-number\ninterface-id\nipv6s\nlocal-hostname\nlocal-ipv4s\nmac\nsubnet-ipv4-cidr-block\nsubnet-ipv6-cidr-blocks',
  );
  assert.equal(text(`${base}/52:54:00:12:34:56/device-number`), '0');
  assert.equal(text(`${base}/52:54:00:12:34:56/local-ipv4s`), '10.0.0.5');
  assert.equal(text(`${base}/52:54:00:12:34:56/subnet-ipv4-cidr-block`), '10.0.0.0/24');
  assert.equal(text(`${base}/52:54:00:12:34:56/ipv6s`), 'fd00:1::5');
  assert.equal(text(`${base}/52:54:00:12:34:56/subnet-ipv6-cidr-blocks`), 'fd00:1::/64');
  assert.equal(text(`${base}/52:54:00:ab:cd:ef/device-number`), '1');
  assert.equal(text(`${base}/52:54:00:ab:cd:ef/subnet-ipv4-cidr-block`), '192.168.7.0/24');
  assert.equal(text(`${base}/52:54:00:ab:cd:ef/mac`), '52:54:00:ab:cd:ef');
});

test('user-data is served as given, and absent (so 404) when the VM has none', () => {
  assert.equal(text('latest/user-data'), '#cloud-config\nruncmd:\n  - echo hello\n');
  const none = renderGuestDocuments(exampleGuest({ userData: undefined }));
  assert.equal(none.get('latest/user-data'), undefined);
  assert.equal(none.get('latest')?.body.toString(), 'dynamic/\nmeta-data/');
});

test('the instance identity document carries id, region, zone and private IP', () => {
  assert.deepEqual(JSON.parse(text('latest/dynamic/instance-identity/document')!), {
    accountId: 'default',
    architecture: 'x86_64',
    availabilityZone: 'site-1a',
    imageId: 'debian-12',
    instanceId: 'vm_01JTESTGUEST0000000000000A',
    instanceType: 'small',
    privateIp: '10.0.0.5',
    region: 'site-1',
    version: '2017-09-30',
  });
  assert.equal(docs.get('latest/dynamic/instance-identity/document')?.type, 'application/json');
});

test('a guest without keys or NICs has no public-keys, mac or network entries', () => {
  const bare = renderGuestDocuments(exampleGuest({ sshKeys: [], nics: [] }));
  assert.equal(
    bare.get('latest/meta-data')?.body.toString(),
    'ami-id\nami-launch-index\nhostname\ninstance-id\ninstance-type\nlocal-hostname\nplacement/',
  );
});
