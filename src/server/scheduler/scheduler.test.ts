import { objectWhen } from '../../store/object-when.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../base/clock.ts';
import { silentLogger } from '../../base/logger.ts';
import { seedBasics } from '../../store/conformance.ts';
import { SqliteStore } from '../../store/sqlite/sqlite-store.ts';
import type { Store } from '../../store/store.ts';
import { Scheduler } from './scheduler.ts';

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
