import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import { keyValueFlag, mebibytesFlag, selectorFlag, whereFlag } from './flags.ts';
import { parseRule } from './nouns/firewall.ts';
import { parseNic } from './nouns/vm.ts';
import { UsageError } from './usage-error.ts';

test('sizes are MiB unless they carry a unit', () => {
  assert.equal(mebibytesFlag('2048'), 2048);
  assert.equal(mebibytesFlag('512MiB'), 512);
  assert.equal(mebibytesFlag('4G'), 4096);
  assert.equal(mebibytesFlag('1TiB'), 1024 * 1024);
  for (const bad of ['', 'lots', '4 PB', '-1', '1.5G']) assert.throws(() => mebibytesFlag(bad), InvalidArgumentError, bad);
});

test('key=value flags accumulate and a value may contain "="', () => {
  assert.deepEqual(keyValueFlag('b=x=y', keyValueFlag('a=1', undefined)), { a: '1', b: 'x=y' });
  assert.throws(() => keyValueFlag('=1', undefined), InvalidArgumentError);
  assert.throws(() => keyValueFlag('novalue', undefined), InvalidArgumentError);
});

test('selectors and filters are checked when the flag is parsed', () => {
  assert.equal(selectorFlag('env=prod,tier in (a,b)'), 'env=prod,tier in (a,b)');
  assert.throws(() => selectorFlag('env in ('), /unbalanced/);
  assert.deepEqual(whereFlag('spec.b=2', whereFlag('spec.a=1', undefined)), ['spec.a=1', 'spec.b=2']);
  assert.throws(() => whereFlag('spec.a', undefined), InvalidArgumentError);
});

test('a --network flag becomes a NIC with its options', () => {
  assert.deepEqual(parseNic('lan'), { network: 'lan' });
  assert.deepEqual(parseNic('lan,ipv4=10.0.0.5,mac=52:54:00:00:00:01,firewall=a,firewall=b,ipv6=auto'), {
    network: 'lan', ipv4: '10.0.0.5', mac: '52:54:00:00:00:01', firewalls: ['a', 'b'], ipv6: 'auto',
  });
  for (const bad of ['', 'lan,ipv4', 'lan,speed=1', 'lan,mac=']) assert.throws(() => parseNic(bad), UsageError, bad);
});

test('a --rule flag becomes a firewall rule', () => {
  assert.deepEqual(parseRule('egress drop'), { direction: 'egress', action: 'drop' });
  assert.deepEqual(parseRule('ingress accept udp any firewall:web'), { direction: 'ingress', action: 'accept', protocol: 'udp', remote: { firewall: 'web' } });
  for (const bad of ['', 'in accept', 'ingress allow', 'ingress accept tcp 22 0.0.0.0/0 extra']) assert.throws(() => parseRule(bad), UsageError, bad);
});
