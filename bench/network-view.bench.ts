/**
 * Node network view benchmark (issue 5, DESIGN.md §10): what agents'
 * `GET /v1/nodes/{name}/network` polls cost the server with 100k VMs on
 * 1,000 nodes: every node's view built once, asked again of an unchanged
 * store, after agents' status reports, and after new VMs were bound.
 * Usage: node --import tsx bench/network-view.bench.ts [vms] [nodes]
 */
import { systemClock } from '../src/base/clock.ts';
import { silentLogger } from '../src/base/logger.ts';
import { NetworkViews } from '../src/server/ipam/network-views.ts';
import { seedBasics } from '../src/store/conformance.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { mib, ms, summarize } from './stats.ts';

const vms = Number(process.argv[2] ?? 100_000);
const nodes = Number(process.argv[3] ?? 1_000);
const networks = 50;
const store = new SqliteStore({ path: ':memory:' });
const by = { author: 'bench' };

async function parallel(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < n) await fn(next++);
  }));
}

try {
  await seedBasics(store);
  await store.create({ kind: 'site', name: 'a', spec: {} }, by);
  for (let f = 0; f < networks; f++) await store.create({ kind: 'firewall', name: `fw-${f}`, spec: { rules: [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['22'], ...(f ? { remote: { firewall: `fw-${f - 1}` } } : {}) }] } }, by);
  for (let n = 0; n < networks; n++) await store.create({ kind: 'network', name: `net-${n}`, spec: { ipv4: { subnet: `10.${n + 1}.0.0/16` }, firewalls: [`fw-${n}`], vni: 100 + n } }, by);
  await parallel(nodes, (i) =>
    store.create({ kind: 'node', name: `n${i}`, spec: { site: 'a', arch: 'x86_64', capacity: { cpus: 512, memoryMiB: 1 << 20, diskGiB: 1000 } }, status: { phase: 'ready', underlayIp: `192.168.${i >> 8}.${i & 255}` } }, by),
  );
  await parallel(vms, (i) => {
    const net = i % networks;
    const host = Math.floor(i / networks) % nodes;
    const slot = Math.floor(i / networks);
    const ip = `10.${net + 1}.${slot >> 8}.${slot & 255}`;
    return store.create({ kind: 'vm', name: `vm-${i}`, spec: { image: 'debian', machineType: 'small', nics: [{ network: `net-${net}` }] }, status: { phase: 'running', node: `n${host}`, addresses: [{ nic: 0, mac: '52:54:00:00:00:01', ipv4: ip }] } }, by);
  });
  const views = new NetworkViews({ store, logger: silentLogger(), clock: systemClock });
  const ac = new AbortController();
  const t0 = performance.now();
  const running = views.run(ac.signal);
  await views.json('n0');
  console.log(`index of ${vms} VMs, ${nodes} nodes, ${networks} networks built in ${((performance.now() - t0) / 1000).toFixed(1)} s; one view is ${((await views.json('n0')).length / 1024).toFixed(0)} KiB of JSON; heap ${mib(process.memoryUsage().heapUsed)}`);
  const pass = async (what: string) => {
    const lat: number[] = [];
    const start = performance.now();
    for (let i = 0; i < nodes; i++) {
      const s = performance.now();
      await views.json(`n${i}`);
      lat.push(performance.now() - s);
    }
    const secs = (performance.now() - start) / 1000;
    const s = summarize(lat);
    console.log(`${what}: ${(nodes / secs).toFixed(0)} views/s (p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)})`);
  };
  await pass('every node once (built)');
  await pass('every node again, store unchanged (cached)');
  await parallel(1000, (i) => store.updateStatus({ kind: 'vm', idOrName: `vm-${i * 97}` }, { phase: 'stopped', node: `n${Math.floor((i * 97) / networks) % nodes}`, addresses: [{ nic: 0, mac: '52:54:00:00:00:01', ipv4: `10.${((i * 97) % networks) + 1}.${Math.floor((i * 97) / networks) >> 8}.${Math.floor((i * 97) / networks) & 255}` }] }, by));
  await pass('after 1,000 VM status reports (phase only)');
  await parallel(100, (i) => store.create({ kind: 'vm', name: `new-${i}`, spec: { image: 'debian', machineType: 'small', nics: [{ network: `net-${i % networks}` }] }, status: { phase: 'scheduled', node: `n${(i * 7) % nodes}`, addresses: [{ nic: 0, mac: '52:54:00:00:00:02', ipv4: `10.${(i % networks) + 1}.255.${i}` }] } }, by));
  await pass('after 100 new VMs bound (members and peers change)');
  ac.abort();
  await running;
} finally {
  await store.close();
}
