import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, nicPortDevices, pciNics } from './qemu-nics.ts';

test('query-pci yields the plugged NICs with their root ports, and the reserved ports', () => {
  const buses = [{
    devices: [
      { qdev_id: '' },
      { qdev_id: 'nicport0', pci_bridge: { devices: [{ qdev_id: 'nic-ct0' }] } },
      { qdev_id: 'nicport1', pci_bridge: { devices: [] } },
      { qdev_id: 'nicport2', pci_bridge: { devices: [{ qdev_id: 'nic-ct2' }] } },
      { qdev_id: 'nic-legacy' },
    ],
  }];
  assert.deepEqual(pciNics(buses), {
    nics: [{ tap: 'ct0', port: 'nicport0' }, { tap: 'ct2', port: 'nicport2' }, { tap: 'legacy' }],
    ports: ['nicport0', 'nicport1', 'nicport2'],
  });
});

test('a hot-plugged NIC takes the lowest free root port, and none when all are used', () => {
  const ports = ['nicport10', 'nicport2', 'nicport1', 'nicport0'];
  assert.equal(freePort(ports, [{ tap: 'a', mac: 'm', port: 'nicport0' }, { tap: 'b', mac: 'm', port: 'nicport2' }]), 'nicport1');
  assert.equal(freePort(['nicport0'], [{ tap: 'a', mac: 'm', port: 'nicport0' }]), undefined);
});

test('root ports pack eight functions per slot, multifunction on function 0 only', () => {
  const ports = nicPortDevices(9);
  assert.match(ports[7]!, /addr=0x10\.7,io-reserve/);
  assert.match(ports[8]!, /id=nicport8,chassis=9,port=0x18,bus=pcie\.0,addr=0x11\.0,multifunction=on/);
});
