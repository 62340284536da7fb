import assert from 'node:assert/strict';
import { test } from 'node:test';
import { imageStatus, minDiskGiB } from './image-status.ts';
import type { StoredImage } from './process-image.ts';

const stored: StoredImage = {
  sha256: 'a'.repeat(64),
  sizeBytes: 1000,
  storedFormat: 'qcow2',
  format: 'vmdk',
  compression: 'xz',
  virtualSizeBytes: 3 * 1024 ** 3 + 1,
  sourceSha256: 'b'.repeat(64),
  sourceSizeBytes: 900,
  created: true,
};

test('the record status names the stored blob, and the upload only in its source fields', () => {
  assert.deepEqual(imageStatus(stored), {
    phase: 'ready',
    format: 'qcow2',
    sha256: 'a'.repeat(64),
    sizeBytes: 1000,
    virtualSizeBytes: 3 * 1024 ** 3 + 1,
    sourceSha256: 'b'.repeat(64),
    sourceFormat: 'vmdk',
    compression: 'xz',
  });
});

test('the minimum disk rounds the virtual size up to whole GiB, at least 1', () => {
  assert.equal(minDiskGiB(stored), 4);
  assert.equal(minDiskGiB({ virtualSizeBytes: 2 * 1024 * 1024 }), 1);
});
