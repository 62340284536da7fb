import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dummyHashLike, hashKind, verifyHash } from './password-hash.ts';

const samples = {
  bcrypt: '$2y$04$.eiLRNDw7N44iwPHCZRMJO0YUZQa1yqE9R2HVDGm6r0GEnZIIjfKS',
  apr1: '$apr1$/r4w/jG8$ohwxZCGlX3NNODiLB9LZk.',
  sha1: '{SHA}UWuXg/ylF+7L0dBk2i0WUxCxl1k=',
  'sha256-crypt': '$5$mGiiqMrsYGKB20dz$PX6gUmjAVieX1VklAhRKz3vZ4mjKa5Kss2V.iLvWFR3',
  'sha512-crypt': '$6$6eIgAzVpX2O8nmpE$1q0QYYQWbHYXKqf0nXGwC1rVxaMLo9P0JJNF8MaoTROllIrv3e5KuDGRVcyQMJFM590MElUa9z0NSvVHDrQ3m1',
} as const;

test('each htpasswd sample (password "p") is recognised and verified', async () => {
  for (const [kind, hash] of Object.entries(samples)) {
    assert.equal(hashKind(hash), kind);
    assert.equal(await verifyHash('p', hash), true, kind);
    assert.equal(await verifyHash('q', hash), false, kind);
  }
});

test('DES crypt, plaintext and truncated hashes are not accepted formats', async () => {
  for (const h of ['abJnggxhB/yWI', 'plaintext', '$2y$04$short', '{SHA}abc', '']) {
    assert.equal(hashKind(h), undefined, h);
    assert.equal(await verifyHash(h, h), false, h);
  }
});

test('a dummy hash has the algorithm and cost of the hash it imitates', async () => {
  assert.match(await dummyHashLike('$2y$07$abcdefghijklmnopqrstuv0123456789012345678901234567890'), /^\$2y\$07\$/);
  assert.match(await dummyHashLike('$6$rounds=9000$salt$' + 'a'.repeat(86)), /^\$6\$rounds=9000\$/);
  for (const [kind, hash] of Object.entries(samples)) assert.equal(hashKind(await dummyHashLike(hash)), kind);
  assert.equal(hashKind(await dummyHashLike(undefined)), 'bcrypt');
});

test('SHA-crypt checks run off the event loop and concurrent ones all get their own answer', async () => {
  let turned = false;
  setImmediate(() => (turned = true));
  const checks = ['p', 'q', 'p', 'r'].map((pw) => verifyHash(pw, samples['sha512-crypt']));
  assert.deepEqual(await Promise.all(checks), [true, false, true, false]);
  assert.ok(turned, 'the event loop went round while the hashes were computed');
});
