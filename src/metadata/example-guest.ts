import type { GuestInfo } from './guest-info.ts';

/** A guest for tests and examples: two NICs, keys, user-data and one parameter of each visibility. */
export function exampleGuest(overrides: Partial<GuestInfo> = {}): GuestInfo {
  return {
    instanceId: 'vm_01JTESTGUEST0000000000000A',
    name: 'web-1',
    hostname: 'web-1',
    project: 'default',
    region: 'site-1',
    availabilityZone: 'site-1a',
    instanceType: 'small',
    imageId: 'debian-12',
    nics: [
      {
        mac: '52:54:00:12:34:56',
        ipv4: { address: '10.0.0.5', prefixLength: 24, gateway: '10.0.0.1', dhcp: true },
        ipv6: { address: 'fd00:1::5', prefixLength: 64, gateway: 'fd00:1::1' },
        dns: ['10.0.0.1'],
        mtu: 1450,
      },
      { mac: '52:54:00:ab:cd:ef', ipv4: { address: '192.168.7.9', prefixLength: 24 } },
    ],
    sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOne alice@example'],
    userData: '#cloud-config\nruncmd:\n  - echo hello\n',
    vendorData: '#cloud-config\npackage_update: false\n',
    parameters: {
      public: { role: 'web' },
      private: { dbUser: 'private-user-value' },
      secret: { dbPassword: 'SECRET-VALUE-d41d8cd98f' },
    },
    launchIndex: 0,
    imdsTokenRequired: false,
    ...overrides,
  };
}
