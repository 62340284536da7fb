import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../api/errors.ts';
import { systemClock } from '../../base/clock.ts';
import { silentLogger } from '../../base/logger.ts';
import { listAll } from '../../store/list-all.ts';
import { seedBasics } from '../../store/conformance.ts';
import { SqliteStore } from '../../store/sqlite/sqlite-store.ts';
import type { Store } from '../../store/store.ts';
import { NetworkIndex } from './network-index.ts';
import { NetworkViews } from './network-views.ts';

const by = { author: 'test' };
const nodes = ['h0', 'h1', 'h2', 'h3'];

/** The views computed from scratch from what the store holds now. */
async function fresh(store: Store): Promise<Map<string, unknown>> {
  const index = new NetworkIndex();
  for (const kind of ['vm', 'node', 'network', 'firewall']) for (const o of (await listAll(store, { kind, project: '*' })).items) index.apply('put', o);
  return new Map(nodes.map((n) => [n, index.view(n).view]));
}

/** A small deterministic generator, so a failure replays. */
function random(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s >>> 8) % n;
  };
}

test('cached views always equal views built from scratch, through random changes to VMs, bindings, networks, firewalls and nodes', async (t) => {
  const store = new SqliteStore({ path: ':memory:' });
  await seedBasics(store);
  await store.create({ kind: 'site', name: 'a', spec: {} }, by);
  const stop = new AbortController();
  const views = new NetworkViews({ store, logger: silentLogger(), clock: systemClock });
  const running = views.run(stop.signal);
  t.after(async () => {
    stop.abort();
    await running;
    await store.close();
  });
  for (const n of nodes) await store.create({ kind: 'node', name: n, spec: { site: 'a', arch: 'x86_64', capacity: { cpus: 8, memoryMiB: 8192, diskGiB: 10 } }, status: { phase: 'ready' } }, by);
  for (const f of ['fa', 'fb', 'fc']) await store.create({ kind: 'firewall', name: f, spec: { rules: [] } }, by);
  for (const f of ['fa', 'fb', 'fc']) await store.update({ kind: 'firewall', idOrName: f }, { labels: {}, metadata: {}, spec: { rules: [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['22'], remote: { firewall: 'fa' } }] } }, by);
  for (const [i, n] of ['na', 'nb', 'nc'].entries()) await store.create({ kind: 'network', name: n, spec: { ipv4: { subnet: `10.${i + 1}.0.0/24` } } }, by);
  const pick = random(7);
  const one = <T>(xs: readonly T[]): T => xs[pick(xs.length)]!;
  const fws = ['fa', 'fb', 'fc'] as const;
  const nets = ['na', 'nb', 'nc'] as const;
  const rules = () => (pick(4) ? [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: [String(1 + pick(1000))], remote: { firewall: one(fws) } }] : []);
  const nic = () => ({ network: one(nets), ...(pick(2) ? { firewalls: [one(fws)] } : {}) });
  const create = () => store.create({ kind: 'vm', name: `vm${pick(12)}`, spec: { image: 'debian', machineType: 'small', nics: pick(3) ? [nic()] : [nic(), nic()] } }, by);
  const bind = async () => {
    const vm = await store.get({ kind: 'vm', idOrName: `vm${pick(12)}` });
    const nics = (vm.spec as { nics: unknown[] }).nics;
    const addresses = nics.map((_, i) => ({ nic: i, mac: `52:54:00:00:0${i}:${String(pick(90) + 10)}`, ipv4: `10.9.0.${pick(250) + 2}` }));
    return store.updateStatus({ kind: 'vm', idOrName: vm.name }, { phase: one(['scheduled', 'running']), ...(pick(8) ? { node: one(nodes) } : {}), ...(pick(4) ? { addresses } : {}) }, by);
  };
  // Weighted towards creating and binding VMs, so that views have peers and members to get wrong.
  const ops: (() => Promise<unknown>)[] = [
    create,
    create,
    bind,
    bind,
    bind,
    () => store.delete({ kind: 'vm', idOrName: `vm${pick(12)}` }, by),
    async () => {
      const vm = await store.get({ kind: 'vm', idOrName: `vm${pick(12)}` });
      return store.update({ kind: 'vm', idOrName: vm.name }, { labels: {}, metadata: {}, spec: { ...vm.spec, nics: [nic()] } }, by);
    },
    async () => {
      const n = await store.get({ kind: 'network', idOrName: one(nets) });
      return store.update({ kind: 'network', idOrName: n.name }, { labels: {}, metadata: {}, spec: { ...n.spec, firewalls: pick(2) ? [one(fws)] : [] } }, by);
    },
    () => store.update({ kind: 'firewall', idOrName: one(fws) }, { labels: {}, metadata: {}, spec: { rules: rules() } }, by),
    () => store.updateStatus({ kind: 'node', idOrName: one(nodes) }, { phase: 'ready', ...(pick(3) ? { underlayIp: `192.0.2.${pick(4) + 1}` } : {}) }, by),
  ];
  let applied = 0;
  for (let step = 0; step < 400; step++) {
    try {
      await one(ops)();
      applied++;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
    // Ask only some nodes each step, so that some views stay cached across several changes.
    const want = await fresh(store);
    for (const n of nodes) if (pick(2)) assert.deepEqual(await views.view(n), want.get(n), `step ${step}, node ${n}`);
  }
  assert.ok(applied > 200, `only ${applied} of 400 random changes were valid`);
});
