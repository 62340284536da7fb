import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkImageInfo } from './image-info-check.ts';

const path = '/data/tmp/01J.upload';
const opts = { format: 'qcow2' as const, path, maxVirtualSizeBytes: 1 << 30 };
const qcow2 = (data: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  'virtual-size': 2097152,
  filename: path,
  format: 'qcow2',
  'format-specific': { type: 'qcow2', data: { compat: '1.1', corrupt: false, ...data } },
  ...extra,
});

test('a plain qcow2 passes and reports its virtual size', () => {
  assert.deepEqual(checkImageInfo(qcow2(), opts), { virtualSizeBytes: 2097152 });
});

test('a backing file, even given only by its format, is refused', () => {
  assert.throws(() => checkImageInfo(qcow2({}, { 'backing-filename': '/etc/shadow' }), opts), /backing file are refused/);
  assert.throws(() => checkImageInfo(qcow2({}, { 'backing-filename-format': 'raw' }), opts), /backing file are refused/);
});

test('an external data file, encryption and a corrupt flag are refused', () => {
  assert.throws(() => checkImageInfo(qcow2({ 'data-file': '/etc/shadow' }), opts), /external data file are refused/);
  assert.throws(() => checkImageInfo(qcow2({}, { encrypted: true }), opts), /encrypted images are refused/);
  assert.throws(() => checkImageInfo(qcow2({ corrupt: true }), opts), /marked corrupt/);
});

test('a format other than the probed one is refused', () => {
  assert.throws(() => checkImageInfo({ ...qcow2(), format: 'raw' }, opts), /content is "raw", expected "qcow2"/);
});

test('a virtual size above the limit is too large, and a missing or zero size is invalid', () => {
  assert.throws(() => checkImageInfo({ ...qcow2(), 'virtual-size': 2 ** 40 }, opts), { code: 'too_large' });
  assert.throws(() => checkImageInfo({ ...qcow2(), 'virtual-size': 0 }, opts), { code: 'invalid' });
  assert.throws(() => checkImageInfo({ ...qcow2(), 'virtual-size': undefined }, opts), { code: 'invalid' });
});

test('a vmdk passes only when every extent is the file itself', () => {
  const vmdk = (extents: unknown) => ({
    'virtual-size': 2097152,
    format: 'vmdk',
    'format-specific': { type: 'vmdk', data: { 'create-type': 'monolithicSparse', extents } },
  });
  const v = { ...opts, format: 'vmdk' as const };
  assert.deepEqual(checkImageInfo(vmdk([{ filename: path }]), v), { virtualSizeBytes: 2097152 });
  assert.throws(() => checkImageInfo(vmdk([{ filename: path }, { filename: '/etc/shadow' }]), v), /extents in other files/);
  assert.throws(() => checkImageInfo(vmdk([]), v), /lists no extents/);
});
