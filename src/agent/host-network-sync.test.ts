import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once, EventEmitter } from 'node:events';
import type { HostNetworkView } from '../api/kinds/network.ts';
import type { AnyObject } from '../api/object.ts';
import { FakeClock } from '../base/clock.ts';
import { silentLogger } from '../base/logger.ts';
import type { HostNetworkSpec } from '../net/host-network.ts';
import { HostNetworkSync, withNics } from './host-network-sync.ts';
import { tapName } from './host-network.ts';

const vm = { id: 'vm_1', name: 'web', kind: 'vm', project: 'default', spec: { nics: [{ network: 'lan' }] }, status: { addresses: [{ nic: 0, mac: '52:54:00:00:00:01', ipv4: '10.0.0.2' }] } } as unknown as AnyObject;
const view = (rules: unknown[]): HostNetworkView => ({
  networks: [{ project: 'default', name: 'lan', vni: 5, peers: [], spec: { ipv4: { subnet: '10.0.0.0/24' }, firewalls: ['fw'] } }],
  firewalls: [{ project: 'default', name: 'fw', spec: { rules: rules as never } }],
  members: [],
});
const config = { id: 'vm_1', name: 'web', cpus: 1, memoryMiB: 64, diskGiB: 1, image: { path: '/i', format: 'raw' as const }, accel: 'tcg' as const };

function rig(fail?: Error) {
  const clock = new FakeClock();
  const applied: HostNetworkSpec[] = [];
  const events = new EventEmitter();
  let current = view([]);
  const sync = new HostNetworkSync({
    options: { dnsmasqRunDir: '/run/x' },
    fetchView: async () => current,
    apply: async (spec) => {
      if (fail) throw fail;
      applied.push(spec);
    },
    clock,
    logger: silentLogger(),
  });
  const stop = new AbortController();
  const first = once(events, 'changed');
  const running = sync.run(stop.signal, () => events.emit('changed'));
  return { clock, applied, events, sync, stop, running, first, setView: (v: HostNetworkView) => (current = v) };
}

test('VMs wait for the view, then the host is converged once and again only when the spec changes', async () => {
  const r = rig();
  const early = await r.sync.converge([vm]);
  assert.match(early.waiting.get('vm_1')!, /waiting for the network view/);
  assert.equal(early.problems.size, 0);
  await r.first;
  const ready = await r.sync.converge([vm]);
  assert.deepEqual(ready.nics.get('vm_1'), [{ tap: tapName('vm_1', 0), mac: '52:54:00:00:00:01' }]);
  await r.sync.converge([vm]);
  assert.equal(r.applied.length, 1);
  // A firewall edit arrives with the next refresh and re-renders only the ruleset.
  r.setView(view([{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['22'] }]));
  const changed = once(r.events, 'changed');
  r.clock.advance(5000);
  await changed;
  await r.sync.converge([vm]);
  assert.equal(r.applied.length, 2);
  assert.deepEqual(r.applied[1]!.links, r.applied[0]!.links);
  assert.equal(r.applied[1]!.ruleset.nics[0]!.rules.length, 1);
  // The last VM leaving converges the host to no networks.
  await r.sync.converge([]);
  assert.deepEqual(r.applied[2]!.links, []);
  r.stop.abort();
  await r.running;
});

test('a host that cannot be converged holds every VM with NICs with the error; VMs without NICs are untouched', async () => {
  const r = rig(new Error('nft: permission denied'));
  await r.first;
  const out = await r.sync.converge([vm]);
  assert.equal(out.nics.size, 0);
  assert.equal(out.problems.get('vm_1'), 'cannot set up the host network: nft: permission denied');
  const held = withNics({ id: 'vm_1', power: 'running', restartPolicy: 'always', config }, out);
  assert.deepEqual(held, { id: 'vm_1', power: 'running', restartPolicy: 'always', problem: 'cannot set up the host network: nft: permission denied' });
  const other = { id: 'vm_2', power: 'running' as const, restartPolicy: 'always' as const, config: { ...config, id: 'vm_2' } };
  assert.deepEqual(withNics(other, out), other);
  // An empty host is never touched (no root needed while no VM has NICs).
  assert.equal((await r.sync.converge([])).problems.size, 0);
  // A VM still waiting for its network is held with that reason, never started without its NICs.
  const waiting = { nics: new Map(), waiting: new Map([['vm_1', 'waiting for the network view from the server']]), problems: new Map() };
  assert.equal(withNics({ id: 'vm_1', power: 'running', restartPolicy: 'always', config }, waiting).problem, 'waiting for the network view from the server');
  r.stop.abort();
  await r.running;
});

test('a ready VM gets its taps in the driver config', () => {
  const d = withNics({ id: 'vm_1', power: 'running', restartPolicy: 'always', config }, { nics: new Map([['vm_1', [{ tap: 't0', mac: '52:54:00:00:00:01' }]]]), waiting: new Map(), problems: new Map() });
  assert.deepEqual(d.config?.nics, [{ tap: 't0', mac: '52:54:00:00:00:01' }]);
});

test('a VM whose new NIC waits for its addresses keeps its ready taps on the host; planned taps never touch the host', async () => {
  const r = rig();
  assert.equal(r.sync.plannedTaps([vm]), undefined, 'no view yet: the host is left alone');
  await r.first;
  assert.deepEqual(r.sync.plannedTaps([vm]), new Set([tapName('vm_1', 0)]));
  assert.equal(r.applied.length, 0);
  await r.sync.converge([vm]);
  const spec = vm.spec as { nics: { network: string }[] };
  const grown = { ...vm, spec: { nics: [...spec.nics, { network: 'lan' }] } } as AnyObject;
  assert.deepEqual(r.sync.plannedTaps([grown]), new Set([tapName('vm_1', 0)]));
  assert.deepEqual(r.sync.plannedTaps([]), new Set(), 'the last VM leaving takes every tap');
  const out = await r.sync.converge([grown]);
  assert.match(out.waiting.get('vm_1')!, /NIC 1/, 'the VM itself is reported waiting');
  assert.equal(r.applied.length, 1, 'the host keeps the first tap: nothing to apply');
  assert.deepEqual(r.applied[0]!.links[0]!.ports.map((p) => p.name), [tapName('vm_1', 0)]);
  // Once the VM is gone, nothing of it stays.
  await r.sync.converge([]);
  assert.deepEqual(r.applied.at(-1)!.links, []);
  r.stop.abort();
  await r.running;
});
