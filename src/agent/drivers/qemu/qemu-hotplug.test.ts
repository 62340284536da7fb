import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { plugNic, queryNics, unplugNic } from './qemu-hotplug.ts';
import type { QmpClient } from './qmp-client.ts';

/** A monitor that records commands, answers from `answers`, and fails the commands named in `fail`. */
function monitor(answers: Record<string, unknown> = {}, fail: string[] = []) {
  const sent: string[] = [];
  const q = Object.assign(new EventEmitter(), {
    execute: async (command: string, args?: Record<string, unknown>) => {
      sent.push(`${command} ${JSON.stringify(args ?? {})}`);
      if (fail.includes(command)) throw new Error(`QMP error: ${command} failed`);
      return answers[command];
    },
  });
  return { q: q as unknown as QmpClient, emitter: q, sent };
}

const nic = { tap: 'ct1', mac: '52:54:00:00:00:01' };

test('a device QEMU refuses takes its backend away again: nothing is left half-plugged', async () => {
  const m = monitor({}, ['device_add']);
  await assert.rejects(plugNic(m.q, nic, 'nicport4'), /device_add failed/);
  assert.deepEqual(m.sent.map((s) => s.split(' ')[0]), ['netdev_del', 'netdev_add', 'device_add', 'netdev_del']);
  assert.match(m.sent[1]!, /"type":"tap","id":"net-ct1","ifname":"ct1","script":"no","downscript":"no"/);
  assert.match(m.sent[2]!, /"driver":"virtio-net-pci","id":"nic-ct1","netdev":"net-ct1","mac":"52:54:00:00:00:01","bus":"nicport4"/);
});

test('an unplug waits for the DEVICE_DELETED of its own device, then drops the backend', async () => {
  const m = monitor();
  const done = unplugNic(m.q, nic, 60_000);
  await new Promise((r) => setImmediate(r));
  m.emitter.emit('event', { event: 'DEVICE_DELETED', data: { path: '/machine/peripheral/nic-ct1/virtio-backend' } });
  m.emitter.emit('event', { event: 'DEVICE_DELETED', data: { device: 'nic-other' } });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(m.sent.map((s) => s.split(' ')[0]), ['device_del'], 'still waiting');
  m.emitter.emit('event', { event: 'DEVICE_DELETED', data: { device: 'nic-ct1', path: '/machine/peripheral/nic-ct1' } });
  assert.equal(await done, true);
  assert.deepEqual(m.sent.map((s) => s.split(' ')[0]), ['device_del', 'netdev_del']);
  assert.equal(m.emitter.listenerCount('event'), 0);
});

test('a guest that does not release the NIC in time keeps it and its backend', async () => {
  const m = monitor();
  assert.equal(await unplugNic(m.q, nic, 20), false);
  assert.deepEqual(m.sent.map((s) => s.split(' ')[0]), ['device_del']);
  assert.equal(m.emitter.listenerCount('close'), 0);
});

test('a re-adopted VM\'s NICs come from query-pci and their MACs; one started before root ports holds its configured NICs', async () => {
  const pci = [{ devices: [{ qdev_id: 'nicport0', pci_bridge: { devices: [{ qdev_id: 'nic-ct1' }] } }, { qdev_id: 'nicport1', pci_bridge: { devices: [] } }] }];
  const m = monitor({ 'query-pci': pci, 'qom-get': '52:54:00:00:00:01' });
  assert.deepEqual(await queryNics(m.q, { pcie: true, configured: [] }), { nics: [{ tap: 'ct1', port: 'nicport0', mac: '52:54:00:00:00:01' }], ports: ['nicport0', 'nicport1'] });
  const legacy = monitor({ 'query-pci': [{ devices: [{ qdev_id: '' }] }] });
  assert.deepEqual(await queryNics(legacy.q, { pcie: true, configured: [nic] }), { nics: [nic], ports: [] });
});
