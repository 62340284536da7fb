import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyObject } from '../api/object.ts';
import { guestUuid } from '../metadata/guest-info.ts';
import { desiredVm, type HostFacts } from './desired-vm.ts';

const host: HostFacts = {
  accel: 'tcg',
  imagePath: () => ({ path: '/images/debian.qcow2', format: 'qcow2' }),
  lookup: (kind) => (kind === 'machine-type' ? ({ spec: { cpus: 1, memoryMiB: 256, diskGiB: 1 } } as unknown as AnyObject) : ({ spec: {} } as unknown as AnyObject)),
};
const vm = (nics: unknown[]): AnyObject =>
  ({ id: 'vm_1', name: 'web', kind: 'vm', project: 'p', spec: { image: 'debian', machineType: 'small', nics }, status: {} }) as unknown as AnyObject;

test('a VM with NICs presents OpenStack Nova in SMBIOS so stock cloud-init reads the metadata service', () => {
  const uuid = guestUuid('vm_1');
  assert.deepEqual(desiredVm(vm([{ network: 'lan' }]), host).config?.smbios, { manufacturer: 'OpenStack Foundation', product: 'OpenStack Nova', serial: uuid, uuid });
});

test('a VM without NICs gets only its UUID, so cloud-init does not wait for a metadata service it cannot reach', () => {
  assert.deepEqual(desiredVm(vm([]), host).config?.smbios, { uuid: guestUuid('vm_1') });
});
