import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from '../../api/errors.ts';
import { checkVmConfig, vmConfigProblems, type VmConfig } from './vm-config.ts';

const good: VmConfig = {
  id: 'vm_01J', name: 'web-1', cpus: 2, memoryMiB: 512, image: { path: '/images/a.qcow2', format: 'qcow2' }, diskGiB: 4, accel: 'tcg',
  disks: [{ name: 'data', sizeGiB: 1 }], nics: [{ tap: 'crowd-t1', mac: '52:54:00:00:00:01' }],
  smbios: { serial: 'ds=nocloud', uuid: '0b5e1c2a-1111-4222-8333-944455556666' },
};

test('a complete config has no problems', () => {
  assert.deepEqual(vmConfigProblems(good), []);
  checkVmConfig(good);
});

test('every problem is reported with its path, in one invalid error', () => {
  const bad = {
    ...good,
    id: '../etc',
    cpus: 0,
    image: { path: 'relative.qcow2', format: 'vmdk' },
    disks: [{ name: 'data', sizeGiB: 1 }, { name: 'data', sizeGiB: 0 }],
    nics: [{ tap: 'a-name-much-too-long', mac: '01:00:5e:00:00:01' }],
    smbios: { serial: 'bad\nline', uuid: 'nope' },
    kernel: { path: '/boot/vmlinuz', append: 'x'.repeat(3000) },
    seed: { path: 'seed.iso' },
  } as unknown as VmConfig;
  assert.deepEqual(vmConfigProblems(bad).map((p) => p.path), [
    'id', 'cpus', 'image.path', 'image.format', 'disks/1/name', 'disks/1/sizeGiB', 'nics/0/tap', 'nics/0/mac', 'smbios/serial', 'smbios/uuid', 'kernel.append', 'seed.path',
  ]);
  assert.throws(() => checkVmConfig(bad), (e: unknown) => e instanceof ApiError && e.code === 'invalid' && /^Cannot start vm "web-1": id must be/.test(e.message));
});

test('paths with commas are refused, since QEMU would read them as option separators', () => {
  assert.deepEqual(vmConfigProblems({ ...good, image: { path: '/images/a,b.qcow2', format: 'raw' } }).map((p) => p.path), ['image.path']);
});
