import { objectWhen } from '../../store/object-when.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../base/clock.ts';
import { silentLogger } from '../../base/logger.ts';
import { seedBasics } from '../../store/conformance.ts';
import { SqliteStore } from '../../store/sqlite/sqlite-store.ts';
import type { Store } from '../../store/store.ts';
import { buildTestApp } from '../test-app.ts';
import { nextBatchSize, Scheduler } from './scheduler.ts';

const by = { author: 'test' };

async function withScheduler(fn: (store: Store) => Promise<void>): Promise<void> {
  const store = new SqliteStore({ path: ':memory:' });
  await seedBasics(store);
  await store.create({ kind: 'site', name: 'a', spec: {} }, by);
  const ac = new AbortController();
  const run = new Scheduler({ store, logger: silentLogger(), clock: systemClock }).run(ac.signal);
  try {
    await fn(store);
  } finally {
    ac.abort();
    await run;
    await store.close();
  }
}

const vm = (name: string, spec: Record<string, unknown> = {}) => ({
  kind: 'vm',
  name,
  spec: { image: 'debian', machineType: 'small', ...spec },
});
const node = (name: string, cpus: number, labels: Record<string, string> = {}) => ({
  kind: 'node',
  name,
  labels,
  spec: { site: 'a', arch: 'x86_64', capacity: { cpus, memoryMiB: 4096, diskGiB: 100 } },
  status: { phase: 'ready' },
});

test('a pending VM is bound to a node that fits and becomes scheduled', async () => {
  await withScheduler(async (store) => {
    await store.create(node('n1', 4), by);
    await store.create(vm('web'), by);
    const placed = await objectWhen(store, { kind: 'vm', name: 'web' }, (v) => v.status.phase === 'scheduled', 5000);
    assert.equal(placed.status.node, 'n1');
  });
});

test('a VM that fits nowhere stays pending with a reason, and is placed when a node arrives', async () => {
  await withScheduler(async (store) => {
    await store.create(node('tiny', 1), by);
    await store.create(vm('big', { resources: { cpus: 4 } }), by);
    const waiting = await objectWhen(store, { kind: 'vm', name: 'big' }, (v) => v.status.phase === 'pending', 5000);
    const cond = (waiting.status.conditions as { type: string; message: string }[]).find((c) => c.type === 'Scheduled');
    assert.equal(cond?.message, '0 of 1 nodes fit: 1 without enough free CPUs');
    await store.create(node('roomy', 8, { size: 'l' }), by);
    const placed = await objectWhen(store, { kind: 'vm', name: 'big' }, (v) => v.status.phase === 'scheduled', 5000);
    assert.equal(placed.status.node, 'roomy');
  });
});

test('VMs with one spread key land on different nodes', async () => {
  await withScheduler(async (store) => {
    for (const n of ['s1', 's2', 's3']) await store.create(node(n, 4), by);
    for (const n of ['r1', 'r2', 'r3']) await store.create(vm(n, { placement: { spreadKey: 'replicas' } }), by);
    const nodes = new Set<unknown>();
    for (const n of ['r1', 'r2', 'r3']) nodes.add((await objectWhen(store, { kind: 'vm', name: n }, (v) => v.status.phase === 'scheduled', 5000)).status.node);
    assert.equal(nodes.size, 3);
  });
});

const setStatus = (store: Store, name: string, status: Record<string, unknown>) => store.updateStatus({ kind: 'vm', project: 'default', idOrName: name }, status, by);

test('a VM with NICs is not bound before IPAM wrote its addresses, and is bound once it has', async () => {
  await withScheduler(async (store) => {
    await store.create(node('n1', 4), by);
    await store.create(vm('nic', { nics: [{ network: 'lan' }, { network: 'lan' }] }), by);
    await store.create(vm('plain'), by);
    // The NIC-less VM, created later, is placed at once; its commit comes no earlier than any decision about the first.
    await objectWhen(store, { kind: 'vm', name: 'plain' }, (v) => v.status.phase === 'scheduled', 5000);
    assert.deepEqual((await store.get({ kind: 'vm', idOrName: 'nic' })).status, {});
    await setStatus(store, 'nic', { addresses: [{ nic: 0, mac: '52:54:00:00:00:01', ipv4: '10.0.0.2' }] });
    await store.create(vm('plain-2'), by);
    await objectWhen(store, { kind: 'vm', name: 'plain-2' }, (v) => v.status.phase === 'scheduled', 5000);
    assert.equal((await store.get({ kind: 'vm', idOrName: 'nic' })).status.node, undefined, 'one NIC of two has no address yet');
    await setStatus(store, 'nic', { addresses: [{ nic: 0, mac: '52:54:00:00:00:01', ipv4: '10.0.0.2' }, { nic: 1, mac: '52:54:00:00:00:02', ipv4: '10.0.0.3' }] });
    const placed = await objectWhen(store, { kind: 'vm', name: 'nic' }, (v) => v.status.phase === 'scheduled', 5000);
    assert.equal(placed.status.node, 'n1');
    assert.equal((placed.status.addresses as unknown[]).length, 2);
  });
});

test('a VM whose addresses IPAM could not assign stays pending on no node, saying why, until IPAM assigns them', async () => {
  await withScheduler(async (store) => {
    await store.create(node('n1', 4), by);
    await store.create(vm('dry', { nics: [{ network: 'lan' }] }), by);
    const why = 'Cannot address NIC 0 of vm "dry": the address pool of network "lan" is exhausted';
    await setStatus(store, 'dry', { conditions: [{ type: 'Addressed', status: 'false', reason: 'AddressesUnavailable', message: why }] });
    const waiting = await objectWhen(store, { kind: 'vm', name: 'dry' }, (v) => v.status.phase === 'pending', 5000);
    assert.equal(waiting.status.node, undefined);
    const cond = (waiting.status.conditions as { type: string; reason: string; message: string }[]).find((c) => c.type === 'Scheduled');
    assert.deepEqual([cond?.reason, cond?.message], ['WaitingForAddresses', why]);
    // A node arriving does not place it: only its addresses can.
    await store.create(node('n2', 4), by);
    await store.create(vm('plain'), by);
    await objectWhen(store, { kind: 'vm', name: 'plain' }, (v) => v.status.phase === 'scheduled', 5000);
    assert.equal((await store.get({ kind: 'vm', idOrName: 'dry' })).status.node, undefined);
    await setStatus(store, 'dry', { ...waiting.status, conditions: [cond], addresses: [{ nic: 0, mac: '52:54:00:00:00:09', ipv4: '10.0.0.9' }] });
    const placed = await objectWhen(store, { kind: 'vm', name: 'dry' }, (v) => v.status.phase === 'scheduled', 5000);
    assert.ok(['n1', 'n2'].includes(placed.status.node as string));
  });
});

test('through the API: a VM on a full /30 stays pending on no node, saying why, and is addressed and bound once another VM is deleted', async (t) => {
  const app = await buildTestApp({ nodes: true, controllers: true });
  t.after(() => app.close());
  await app.seed();
  const host = await app.enrol('h1');
  const call = (method: 'POST' | 'DELETE', url: string, payload?: object) => app.app.inject({ method, url, headers: app.auth, ...(payload ? { payload } : {}) });
  assert.equal((await call('POST', '/v1/networks', { name: 'tiny', spec: { ipv4: { subnet: '10.0.9.0/30' } } })).statusCode, 201);
  const create = async (name: string) => assert.equal((await call('POST', '/v1/vms', { name, spec: { image: 'debian', machineType: 'small', nics: [{ network: 'tiny' }] } })).statusCode, 201);
  await create('first');
  const first = await objectWhen(app.store, { kind: 'vm', name: 'first' }, (v) => v.status.phase === 'scheduled', 5000);
  assert.deepEqual([first.status.node, (first.status.addresses as { ipv4: string }[])[0]!.ipv4], ['h1', '10.0.9.2']);
  await create('second');
  await objectWhen(app.store, { kind: 'vm', name: 'second' }, (v) => v.status.phase === 'pending', 5000);
  const shown = (await app.app.inject({ method: 'GET', url: '/v1/vms/second', headers: app.auth })).json<{ status: { phase: string; node?: string; conditions: { type: string; message: string }[] } }>();
  assert.equal(shown.status.phase, 'pending');
  assert.equal(shown.status.node, undefined);
  const seen = await app.app.inject({ method: 'GET', url: '/v1/vms', headers: { authorization: host } });
  assert.deepEqual(seen.json<{ items: { name: string }[] }>().items.map((v) => v.name), ['first'], 'the host does not see the waiting VM');
  for (const type of ['Scheduled', 'Addressed']) assert.match(shown.status.conditions.find((c) => c.type === type)!.message, /the address pool of network "tiny" is exhausted/);
  assert.equal((await call('DELETE', '/v1/vms/first')).statusCode, 200);
  const placed = await objectWhen(app.store, { kind: 'vm', name: 'second' }, (v) => v.status.phase === 'scheduled', 5000);
  assert.deepEqual([placed.status.node, (placed.status.addresses as { ipv4: string }[])[0]!.ipv4], ['h1', '10.0.9.2']);
  assert.equal((placed.status.conditions as { type: string }[]).some((c) => c.type === 'Addressed'), false);
});

test('binding batches grow while they commit within the latency budget, shrink when they take longer, and stay within bounds', () => {
  assert.ok(nextBatchSize(128, 2) > 128);
  assert.equal(nextBatchSize(128, 13), 128);
  assert.ok(nextBatchSize(128, 40) < 128);
  let size = 128;
  for (let i = 0; i < 200; i++) size = nextBatchSize(size, 1);
  assert.equal(size, 4096);
  for (let i = 0; i < 200; i++) size = nextBatchSize(size, 500);
  assert.equal(size, 64);
});

test('a batch whose commit fails is decided again after the scheduler relists, without the capacity it had taken', async () => {
  const store = new SqliteStore({ path: ':memory:' });
  await seedBasics(store);
  await store.create({ kind: 'site', name: 'a', spec: {} }, by);
  await store.create(node('one-cpu', 1), by);
  let failures = 0;
  // The first batch commit fails as a full disk would; everything else goes to the real store.
  const failing = new Proxy(store, {
    get(target, key) {
      if (key === 'updateStatuses' && failures === 0)
        return async () => {
          failures++;
          throw new Error('disk I/O error');
        };
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const ac = new AbortController();
  const run = new Scheduler({ store: failing, logger: silentLogger(), clock: systemClock }).run(ac.signal);
  try {
    await store.create(vm('survivor'), by);
    const placed = await objectWhen(store, { kind: 'vm', name: 'survivor' }, (v) => v.status.phase === 'scheduled', 5000);
    assert.equal(placed.status.node, 'one-cpu', 'the failed attempt left the only CPU free');
    assert.equal(failures, 1);
  } finally {
    ac.abort();
    await run;
    await store.close();
  }
});
