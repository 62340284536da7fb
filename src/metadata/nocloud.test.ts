import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exampleGuest } from './example-guest.ts';
import { renderNocloudSeed } from './nocloud.ts';

test('the NoCloud seed files match the golden text', () => {
  const seed = renderNocloudSeed(exampleGuest());
  assert.equal(seed['user-data'], '#cloud-config\nruncmd:\n  - echo hello\n');
  assert.equal(
    seed['meta-data'],
    `instance-id: vm_01JTESTGUEST0000000000000A
local-hostname: web-1
public-keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOne alice@example
`,
  );
  assert.equal(
    seed['network-config'],
    `version: 2
ethernets:
  nic0:
    match:
      macaddress: 52:54:00:12:34:56
    dhcp4: true
    accept-ra: false
    addresses:
      - fd00:1::5/64
    routes:
      - to: ::/0
        via: fd00:1::1
    nameservers:
      addresses:
        - 10.0.0.1
    mtu: 1450
  nic1:
    match:
      macaddress: 52:54:00:ab:cd:ef
    dhcp4: false
    addresses:
      - 192.168.7.9/24
`,
  );
});

test('a static IPv4 NIC gets its address and default route; SLAAC IPv6 accepts RAs', () => {
  const seed = renderNocloudSeed(
    exampleGuest({
      nics: [
        {
          mac: '52:54:00:00:00:01',
          ipv4: { address: '10.1.0.7', prefixLength: 16, gateway: '10.1.0.1' },
          ipv6: { address: 'fd00::7', prefixLength: 64, slaac: true },
        },
      ],
    }),
  );
  assert.equal(
    seed['network-config'],
    `version: 2
ethernets:
  nic0:
    match:
      macaddress: 52:54:00:00:00:01
    dhcp4: false
    accept-ra: true
    addresses:
      - 10.1.0.7/16
    routes:
      - to: 0.0.0.0/0
        via: 10.1.0.1
`,
  );
});

test('no OS parameter reaches the seed, and a VM without user-data gets an empty cloud-config', () => {
  const seed = renderNocloudSeed(exampleGuest({ userData: undefined }));
  const all = Object.values(seed).join('\n');
  assert.ok(!all.includes('SECRET-VALUE') && !all.includes('private-user-value') && !all.includes('role'));
  assert.equal(seed['user-data'], '#cloud-config\n{}\n');
});
