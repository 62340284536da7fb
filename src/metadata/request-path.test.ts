import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maxPathLength, parseRequestPath } from './request-path.ts';

test('ordinary metadata paths split into segments, with or without a trailing slash', () => {
  assert.deepEqual(parseRequestPath('/'), { ok: true, segments: [] });
  assert.deepEqual(parseRequestPath('/latest/meta-data/'), { ok: true, segments: ['latest', 'meta-data'] });
  assert.deepEqual(parseRequestPath('/latest/meta-data/public-keys/0/openssh-key'), {
    ok: true,
    segments: ['latest', 'meta-data', 'public-keys', '0', 'openssh-key'],
  });
  assert.deepEqual(parseRequestPath('/latest/meta-data/network/interfaces/macs/52:54:00:12:34:56/mac?x=1'), {
    ok: true,
    segments: ['latest', 'meta-data', 'network', 'interfaces', 'macs', '52:54:00:12:34:56', 'mac'],
  });
  assert.deepEqual(parseRequestPath('/openstack/latest/meta_data.json'), { ok: true, segments: ['openstack', 'latest', 'meta_data.json'] });
});

test('traversal, encodings, empty segments and odd characters are refused with 400', () => {
  for (const bad of [
    '/latest/../crowd',
    '/..',
    '/./latest',
    '/latest/%2e%2e/x',
    '/latest/meta-data%2Finstance-id',
    '//latest',
    '/latest//meta-data',
    '//',
    '/latest/.hidden',
    '/latest\\meta-data',
    'latest/meta-data',
    '*',
    'http://169.254.169.254/latest',
    '/latest/meta data',
    '/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q',
  ]) {
    const r = parseRequestPath(bad);
    assert.equal(r.ok, false, bad);
    assert.equal(!r.ok && r.status, 400, bad);
  }
});

test('an absurdly long path is refused with 414', () => {
  const r = parseRequestPath(`/${'a'.repeat(maxPathLength)}`);
  assert.deepEqual(r, { ok: false, status: 414, reason: 'path too long' });
});
