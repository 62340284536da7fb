import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fingerprintOf, normalizeFingerprint } from './fingerprint.ts';

const hex = 'ab'.repeat(32);

test('a fingerprint is sha256: and the lower-case hex digest of the DER bytes', () => {
  assert.equal(fingerprintOf(new TextEncoder().encode('abc')), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('fingerprints are read in every common spelling and rejected otherwise', () => {
  for (const text of [`sha256:${hex}`, `SHA256:${hex.toUpperCase()}`, hex.match(/../g)!.join(':').toUpperCase(), `sha-256=${hex}`, ` ${hex} `])
    assert.equal(normalizeFingerprint(text), `sha256:${hex}`, text);
  for (const text of ['', 'sha256:', `sha1:${hex}`, hex.slice(2), `${hex}zz`]) assert.equal(normalizeFingerprint(text), undefined, text);
});
