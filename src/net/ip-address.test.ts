import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eui64Address, ipv4Netmask, ipv6Hex, linkLocalFromMac, networkOf, parseInterfaceAddress, parseIpAddress, parseIpPrefix, prefixText } from './ip-address.ts';

test('prefixes are parsed into canonical text', () => {
  assert.deepEqual(parseIpPrefix('10.0.0.0/24'), { family: 4, address: '10.0.0.0', length: 24 });
  assert.deepEqual(parseIpPrefix('FD00:0:0::/64'), { family: 6, address: 'fd00::', length: 64 });
  assert.deepEqual(parseIpPrefix('2001:db8:0:0:1:0:0:1'), { family: 6, address: '2001:db8::1:0:0:1', length: 128 });
  assert.equal(prefixText(parseIpPrefix('192.0.2.7')!), '192.0.2.7');
  assert.equal(prefixText(parseIpPrefix('::ffff:1.2.3.4')!), '::ffff:102:304');
});

test('prefixes with host bits, bad lengths or garbage are refused', () => {
  for (const bad of ['10.0.0.1/24', '10.0.0.0/33', 'fd00::1/64', '300.1.1.1', 'x', '10.0.0.0/', '10.0.0.0/8/8', '']) {
    assert.equal(parseIpPrefix(bad), undefined, bad);
  }
  assert.equal(parseIpAddress('10.0.0.0/24'), undefined);
});

test('interface addresses keep their host bits and give their network', () => {
  const a = parseInterfaceAddress('10.1.2.3/16')!;
  assert.deepEqual(a, { family: 4, address: '10.1.2.3', length: 16 });
  assert.equal(prefixText(networkOf(a)), '10.1.0.0/16');
  assert.equal(prefixText(networkOf(parseInterfaceAddress('fd00:1::1/64')!)), 'fd00:1::/64');
  assert.equal(parseInterfaceAddress('10.1.2.3'), undefined);
});

test('netmasks and EUI-64 link-local addresses are derived', () => {
  assert.equal(ipv4Netmask(24), '255.255.255.0');
  assert.equal(ipv4Netmask(0), '0.0.0.0');
  assert.equal(ipv6Hex('fd00::5'), '0xfd000000000000000000000000000005');
  assert.equal(linkLocalFromMac('52:54:00:12:34:56'), 'fe80::5054:ff:fe12:3456');
  assert.throws(() => linkLocalFromMac('52:54:00:12:34'), /Cannot use MAC "52:54:00:12:34"/);
  assert.equal(eui64Address('fd00:1:2:3::/64', '52:54:00:12:34:56'), 'fd00:1:2:3:5054:ff:fe12:3456');
  assert.throws(() => eui64Address('fd00::/48', '52:54:00:12:34:56'), /Cannot derive a SLAAC address in "fd00::\/48": not an IPv6 \/64/);
});
