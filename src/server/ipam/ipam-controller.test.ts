import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VmStatus } from '../../api/kinds/vm.ts';
import type { AnyObject } from '../../api/object.ts';
import { systemClock } from '../../base/clock.ts';
import { silentLogger } from '../../base/logger.ts';
import { SqliteStore } from '../../store/sqlite/sqlite-store.ts';
import type { Store } from '../../store/store.ts';
import { ensureDefaultProject } from '../bootstrap.ts';
import { freeVni, IpamController } from './ipam-controller.ts';

const by = { author: 'test' };

/** Resolves with the object once `check` holds for it; fails after 10 s. */
async function until(store: Store, kind: string, name: string, check: (o: AnyObject) => boolean): Promise<AnyObject> {
  const now = await store.get({ kind, project: 'default', idOrName: name });
  if (check(now)) return now;
  // A referenced timer, so a wait that never ends fails the test instead of emptying the event loop.
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 10_000);
  try {
    for await (const ev of store.watch({ kinds: [kind], fromRevision: now.revision }, ac.signal)) {
      if (ev.type !== 'bookmark' && ev.object.name === name && ev.type !== 'delete' && check(ev.object)) return ev.object;
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
  }
  throw new Error(`Gave up waiting for ${kind} "${name}"`);
}

const status = (o: AnyObject) => o.status as VmStatus;

test('free VNIs skip those in specs and statuses', () => {
  const n = (spec: Record<string, unknown>, st: Record<string, unknown> = {}) => ({ spec, status: st }) as AnyObject;
  assert.equal(freeVni([n({ vni: 1 }), n({}, { vni: 2 }), n({ vni: 4 })]), 3);
});

/** A store with the default project, a machine type and an image; closed (and the controller stopped) after the test. */
async function seededStore(t: { after(fn: () => Promise<void>): void }) {
  const store = new SqliteStore({ path: ':memory:' });
  await ensureDefaultProject(store);
  const stop = new AbortController();
  t.after(async () => {
    stop.abort();
    await store.close();
  });
  await store.create({ kind: 'machine-type', name: 'small', spec: { cpus: 1, memoryMiB: 512, diskGiB: 1 } }, by);
  await store.create({ kind: 'image', name: 'debian', spec: { arch: 'x86_64' } }, by);
  return { store, stop };
}

test('the controller gives networks a VNI and NICs addresses, holds a VM when the pool is dry, and frees addresses on delete', async (t) => {
  const { store, stop } = await seededStore(t);
  await store.create({ kind: 'network', name: 'tiny', spec: { ipv4: { subnet: '10.5.0.0/24', dhcp: { start: '10.5.0.10', end: '10.5.0.11' } } } }, by);
  const vm = (name: string, nics: unknown[]) => store.create({ kind: 'vm', name, spec: { image: 'debian', machineType: 'small', nics } }, by);
  await vm('a', [{ network: 'tiny' }, { network: 'tiny', ipv4: '10.5.0.50' }]);
  const run = new IpamController({ store, logger: silentLogger(), clock: systemClock }).run(stop.signal);

  const net = await until(store, 'network', 'tiny', (o) => o.status.vni !== undefined);
  assert.equal(net.status.vni, 1);
  const a = await until(store, 'vm', 'a', (o) => status(o).addresses?.length === 2);
  assert.deepEqual(status(a).addresses!.map((x) => x.ipv4), ['10.5.0.10', '10.5.0.50']);

  await vm('b', [{ network: 'tiny' }]);
  await vm('c', [{ network: 'tiny' }]);
  await until(store, 'vm', 'b', (o) => status(o).addresses?.[0]?.ipv4 === '10.5.0.11');
  const c = await until(store, 'vm', 'c', (o) => status(o).conditions?.some((x) => x.type === 'Addressed') ?? false);
  assert.match(status(c).conditions!.find((x) => x.type === 'Addressed')!.message!, /the address pool of network "tiny" is exhausted/);
  assert.equal(status(c).addresses, undefined);

  // An agent's report that lacks the addresses gets them back, unchanged.
  await store.updateStatus({ kind: 'vm', project: 'default', idOrName: 'a' }, { phase: 'running' }, by);
  const again = await until(store, 'vm', 'a', (o) => status(o).addresses?.length === 2);
  assert.deepEqual(status(again).addresses, status(a).addresses);
  assert.equal(status(again).phase, 'running');

  await store.delete({ kind: 'vm', project: 'default', idOrName: 'b' }, by);
  const freed = await until(store, 'vm', 'c', (o) => status(o).addresses !== undefined);
  assert.equal(status(freed).addresses![0]!.ipv4, '10.5.0.11');
  assert.equal(status(freed).conditions, undefined);

  // A reservation added to the network moves the NIC with that MAC; pooled addresses otherwise stay put.
  const mac = status(a).addresses![0]!.mac;
  await store.update({ kind: 'network', project: 'default', idOrName: 'tiny' }, { labels: {}, metadata: {}, spec: { ipv4: { subnet: '10.5.0.0/24', dhcp: { start: '10.5.0.10', end: '10.5.0.11' }, reservations: [{ mac, address: '10.5.0.77' }] } } }, by);
  const moved = await until(store, 'vm', 'a', (o) => status(o).addresses?.[0]?.ipv4 === '10.5.0.77');
  assert.equal(status(moved).addresses![1]!.ipv4, '10.5.0.50');
  assert.equal(status(await store.get({ kind: 'vm', project: 'default', idOrName: 'c' })).addresses![0]!.ipv4, '10.5.0.11');
  stop.abort();
  await run;
});

test('a static address outside its network, or a gateway VM on another network, is refused when written', async (t) => {
  const store = new SqliteStore({ path: ':memory:' });
  await ensureDefaultProject(store);
  t.after(() => store.close());
  await store.create({ kind: 'machine-type', name: 'small', spec: { cpus: 1, memoryMiB: 512, diskGiB: 1 } }, by);
  await store.create({ kind: 'image', name: 'debian', spec: { arch: 'x86_64' } }, by);
  await store.create({ kind: 'network', name: 'lan', spec: { ipv4: { subnet: '10.5.0.0/24' } } }, by);
  await store.create({ kind: 'network', name: 'v6only', spec: { ipv6: { mode: 'slaac', prefix: 'fd00:5::/64' } } }, by);
  const vm = (name: string, nics: unknown[]) => store.create({ kind: 'vm', name, spec: { image: 'debian', machineType: 'small', nics } }, by);
  await assert.rejects(vm('a', [{ network: 'lan', ipv4: '10.6.0.9' }]), /"10\.6\.0\.9" is outside 10\.5\.0\.0\/24 of network "lan"/);
  await assert.rejects(vm('b', [{ network: 'v6only', ipv4: '10.5.0.9' }]), /network "v6only" has no IPv4 subnet/);
  await assert.rejects(vm('c', [{ network: 'lan', ipv6: 'fd00:6::1' }]), /network "lan" has no IPv6 prefix/);
  assert.equal((await store.list({ kind: 'vm', project: 'default' })).items.length, 0);
  await vm('router', [{ network: 'lan' }]);
  await assert.rejects(
    store.create({ kind: 'network', name: 'dmz', spec: { ipv4: { subnet: '10.7.0.0/24' }, gateway: { mode: 'vm', vm: 'router' } } }, by),
    /VM "router" has no NIC on network "dmz"/,
  );
});

test('a VM that lets go of an address, not only a deleted one, lets a waiting VM have it', async (t) => {
  const { store, stop } = await seededStore(t);
  await store.create({ kind: 'network', name: 'one', spec: { ipv4: { subnet: '10.6.0.0/24', dhcp: { start: '10.6.0.10', end: '10.6.0.10' } } } }, by);
  const spec = (nics: unknown[]) => ({ image: 'debian', machineType: 'small', nics });
  await store.create({ kind: 'vm', name: 'a', spec: spec([{ network: 'one', ipv4: '10.6.0.10' }]) }, by);
  await store.create({ kind: 'vm', name: 'b', spec: spec([{ network: 'one' }]) }, by);
  const run = new IpamController({ store, logger: silentLogger(), clock: systemClock }).run(stop.signal);
  const waiting = await until(store, 'vm', 'b', (o) => status(o).conditions?.some((x) => x.type === 'Addressed') ?? false);
  assert.match(status(waiting).conditions![0]!.message!, /the address pool of network "one" is exhausted/);
  await store.update({ kind: 'vm', project: 'default', idOrName: 'a' }, { labels: {}, metadata: {}, spec: spec([{ network: 'one', ipv4: '10.6.0.20' }]) }, by);
  const b = await until(store, 'vm', 'b', (o) => status(o).addresses !== undefined);
  assert.equal(status(b).addresses![0]!.ipv4, '10.6.0.10');
  assert.equal(status(b).conditions, undefined);
  assert.equal(status(await store.get({ kind: 'vm', project: 'default', idOrName: 'a' })).addresses![0]!.ipv4, '10.6.0.20');
  stop.abort();
  await run;
});
