import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertGolden } from './golden.ts';
import { renderDnsmasq, type DnsmasqOptions } from './dnsmasq-config.ts';

const full: DnsmasqOptions = {
  network: 'blue',
  bridge: 'crbr1',
  runDir: '/run/crowd/dnsmasq',
  mtu: 1450,
  ipv4: { subnet: '10.0.0.0/24', router: '10.0.0.1', dns: ['10.0.0.53', '192.0.2.53'], leaseSeconds: 7200 },
  ipv6: { mode: 'slaac', prefix: 'fd00:1::/64', dns: ['fd00:1::53'], router: true },
  hosts: [
    { mac: '52:54:00:00:00:0B', ipv4: '10.0.0.11', hostname: 'web-2' },
    { mac: '52:54:00:00:00:0a', ipv4: '10.0.0.10', ipv6: 'fd00:1::10' },
  ],
  staticOnly: true,
};

test('a static-only dual-stack network renders as the golden config and lease file', () => {
  const { config, hosts } = renderDnsmasq(full);
  assertGolden(config, new URL('./testdata/dnsmasq-static.golden.conf', import.meta.url));
  assert.equal(hosts, '52:54:00:00:00:0a,10.0.0.10,[fd00:1::10]\n52:54:00:00:00:0b,10.0.0.11,web-2\n');
});

test('an isolated network with a dynamic range and DHCPv6 renders as the golden config', () => {
  const { config, hosts } = renderDnsmasq({
    network: 'lab',
    bridge: 'crbr2',
    runDir: '/run/crowd/dnsmasq',
    dnsPort: 53,
    ipv4: { subnet: '10.9.0.0/16', range: { start: '10.9.1.0', end: '10.9.1.255' } },
    ipv6: { mode: 'dhcpv6', prefix: 'fd00:9::/64', range: { start: 'fd00:9::1000', end: 'fd00:9::1fff' } },
    hosts: [],
    staticOnly: false,
  });
  assertGolden(config, new URL('./testdata/dnsmasq-dynamic.golden.conf', import.meta.url));
  assert.equal(hosts, '');
});

test('IPv6 modes pick ra-only, static DHCPv6 or no range at all', () => {
  const v6 = (ipv6: DnsmasqOptions['ipv6']) => renderDnsmasq({ ...full, ipv4: undefined, ipv6 }).config.split('\n').filter((l) => /^(dhcp-range|ra-param)/.test(l));
  assert.deepEqual(v6({ mode: 'slaac', prefix: 'fd00::/64' }), ['ra-param=crbr1,mtu:1450,60,0', 'dhcp-range=::,constructor:crbr1,ra-only,64,3600']);
  assert.deepEqual(v6({ mode: 'dhcpv6', prefix: 'fd00::/64' }), ['ra-param=crbr1,mtu:1450,60,0', 'dhcp-range=::,constructor:crbr1,static,64,3600']);
  assert.deepEqual(v6({ mode: 'static', prefix: 'fd00::/64', router: true }), ['ra-param=crbr1,mtu:1450,60']);
});

test('bad input is refused with the network and the reason', () => {
  const cases: [Partial<DnsmasqOptions>, RegExp][] = [
    [{ network: 'Blue' }, /Cannot render dnsmasq for network "Blue": the name is not a DNS label/],
    [{ runDir: 'relative' }, /run directory "relative" must be an absolute path/],
    [{ runDir: '/tmp/a\nport=53' }, /must be an absolute path without spaces/],
    [{ bridge: 'crbr1\ninterface=eth0' }, /bridge "crbr1\ninterface=eth0" is not a valid interface name/],
    [{ ipv4: { subnet: '10.0.0.1/24' } }, /subnet "10.0.0.1\/24" is not an IPv4 CIDR/],
    [{ ipv4: { subnet: '10.0.0.0/24', router: 'fd00::1' } }, /router "fd00::1" is not an IPv4 address/],
    [{ hosts: [{ mac: '52:54:00:00:00:01', ipv4: '10.0.0.5' }, { mac: '52:54:00:00:00:02', ipv4: '10.0.0.5' }] }, /"10.0.0.5" appears in two static leases/],
    [{ hosts: [{ mac: '52:54:00:00:00:01' }, { mac: '52:54:00:00:00:01' }] }, /"52:54:00:00:00:01" appears in two static leases/],
    [{ hosts: [{ mac: '52:54:00:00:00:01', hostname: 'a,b' }] }, /hostname "a,b" is not a DNS label/],
    [{ dnsPort: 70000 }, /DNS port 70000 is outside 0-65535/],
    [{ ipv6: { mode: 'stateful' as 'slaac', prefix: 'fd00::/64' } }, /IPv6 mode "stateful" is not slaac, dhcpv6 or static/],
  ];
  for (const [patch, message] of cases) assert.throws(() => renderDnsmasq({ ...full, ...patch }), message);
});
