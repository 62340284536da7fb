import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrWithin, parseCidr, sourceInCidr } from './source-cidr.ts';

test('CIDRs and bare addresses parse; host bits and garbage do not', () => {
  assert.deepEqual(parseCidr('192.0.2.9'), { family: 4, network: 0xc0000209n, length: 32 });
  assert.equal(parseCidr('fd00::1')?.length, 128);
  for (const bad of ['192.0.2.1/24', '10.0.0.0/33', 'example.com', '', '::/129']) assert.equal(parseCidr(bad), undefined, bad);
});

test('a source is inside a CIDR only in the same family, IPv4-mapped IPv6 counting as IPv4', () => {
  assert.ok(sourceInCidr('10.1.2.3', '10.0.0.0/8'));
  assert.ok(sourceInCidr('::ffff:10.1.2.3', '10.0.0.0/8'));
  assert.ok(!sourceInCidr('11.0.0.1', '10.0.0.0/8'));
  assert.ok(!sourceInCidr('::a01:203', '10.0.0.0/8'));
  assert.ok(sourceInCidr('2001:db8::5', '2001:db8::/32'));
  assert.ok(!sourceInCidr('not-an-ip', '0.0.0.0/0'));
});

test('one CIDR lies within another only when it is no wider and starts inside', () => {
  assert.ok(cidrWithin('10.1.0.0/16', '10.0.0.0/8'));
  assert.ok(cidrWithin('10.0.0.0/8', '10.0.0.0/8'));
  assert.ok(cidrWithin('10.1.2.3', '10.0.0.0/8'));
  assert.ok(!cidrWithin('10.0.0.0/7', '10.0.0.0/8'));
  assert.ok(!cidrWithin('11.0.0.0/16', '10.0.0.0/8'));
  assert.ok(!cidrWithin('fd00::/64', '0.0.0.0/0'));
});
