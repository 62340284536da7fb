import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIpv6, isUnicastMac, parseIpv4, parseIpv6, parsePrefix, prefixContains, prefixesOverlap } from './ip.ts';

test('IPv4 addresses parse and reject out-of-range octets', () => {
  assert.equal(parseIpv4('10.0.0.1'), 0x0a000001n);
  assert.equal(parseIpv4('256.0.0.1'), undefined);
  assert.equal(parseIpv4('01.2.3.4'), undefined);
  assert.equal(parseIpv4('1.2.3'), undefined);
});

test('IPv6 addresses parse in compressed and embedded-IPv4 forms', () => {
  assert.equal(parseIpv6('::1'), 1n);
  assert.equal(parseIpv6('fe80::a9fe:a9fe'), (0xfe80n << 112n) | 0xa9fea9fen);
  assert.equal(parseIpv6('::ffff:10.0.0.1'), (0xffffn << 32n) | 0x0a000001n);
  assert.equal(parseIpv6('1::2::3'), undefined);
  assert.equal(parseIpv6('1:2:3:4:5:6:7'), undefined);
  assert.equal(formatIpv6(parseIpv6('fd00:0:0:0:0:0:0:1')!), 'fd00::1');
});

test('prefixes need zero host bits and know containment and overlap', () => {
  assert.equal(parsePrefix('10.0.0.1/24'), undefined);
  assert.equal(parsePrefix('10.0.0.0/33'), undefined);
  const a = parsePrefix('10.0.0.0/16')!;
  const b = parsePrefix('10.0.5.0/24')!;
  const c = parsePrefix('10.1.0.0/24')!;
  assert.ok(prefixesOverlap(a, b));
  assert.ok(!prefixesOverlap(b, c));
  assert.ok(prefixContains(b, { family: 4, value: parseIpv4('10.0.5.9')! }));
  assert.ok(!prefixContains(parsePrefix('fd00::/64')!, { family: 4, value: 1n }));
});

test('multicast MACs are not unicast', () => {
  assert.ok(isUnicastMac('52:54:00:12:34:56'));
  assert.ok(!isUnicastMac('01:00:5e:00:00:01'));
  assert.ok(!isUnicastMac('52:54:00:12:34'));
});
