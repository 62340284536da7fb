import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../base/clock.ts';
import { silentLogger } from '../../base/logger.ts';
import { SqliteStore } from '../../store/sqlite/sqlite-store.ts';
import { sweepLeases } from './node-lease.ts';

test('a node whose heartbeat stopped becomes unreachable, and only that one', async () => {
  const clock = new FakeClock();
  const store = new SqliteStore({ path: ':memory:', clock });
  const deps = { store, clock, logger: silentLogger() };
  const by = { author: 't' };
  await store.create({ kind: 'site', name: 'a', spec: {} }, by);
  const spec = { site: 'a', arch: 'x86_64', capacity: { cpus: 1, memoryMiB: 512, diskGiB: 1 } };
  const seen = new Date(clock.now()).toISOString();
  await store.create({ kind: 'node', name: 'quiet', spec, status: { phase: 'ready', lastSeen: seen } }, by);
  await store.create({ kind: 'node', name: 'alive', spec, status: { phase: 'ready', lastSeen: seen } }, by);
  clock.advance(20_000);
  await store.updateStatus({ kind: 'node', idOrName: 'alive' }, { phase: 'ready', lastSeen: new Date(clock.now()).toISOString() }, by);
  assert.deepEqual(await sweepLeases(deps, 30_000), []);
  clock.advance(15_000);
  assert.deepEqual(await sweepLeases(deps, 30_000), ['quiet']);
  assert.equal((await store.get({ kind: 'node', idOrName: 'quiet' })).status.phase, 'unreachable');
  assert.equal((await store.get({ kind: 'node', idOrName: 'alive' })).status.phase, 'ready');
  assert.deepEqual(await sweepLeases(deps, 30_000), [], 'an unreachable node is not marked again');
  await store.close();
});
