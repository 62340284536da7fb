/**
 * Placement benchmark (DESIGN.md §10): VMs onto simulated hosts, each
 * decision durably committed to a SQLite store on disk; placements/s and
 * decision → commit latency. Usage: node --import tsx bench/placement.bench.ts [vms] [nodes]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/base/clock.ts';
import { silentLogger } from '../src/base/logger.ts';
import { Scheduler } from '../src/server/scheduler/scheduler.ts';
import { seedBasics } from '../src/store/conformance.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { ms, summarize } from './stats.ts';

const vms = Number(process.argv[2] ?? 100_000);
const nodes = Number(process.argv[3] ?? 10_000);
const dir = mkdtempSync(join(tmpdir(), 'crowd-bench-'));
const store = new SqliteStore({ path: join(dir, 'placement.db') });
const by = { author: 'bench' };

async function parallel(n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: 256 }, async () => {
    while (next < n) await fn(next++);
  }));
}

try {
  await seedBasics(store);
  await store.create({ kind: 'site', name: 'a', spec: {} }, by);
  await parallel(nodes, (i) =>
    store.create({ kind: 'node', name: `n${i}`, labels: { rack: `r${i % 40}` }, spec: { site: 'a', arch: 'x86_64', capacity: { cpus: 32, memoryMiB: 131072, diskGiB: 1000 } }, status: { phase: 'ready' } }, by),
  );
  await parallel(vms, (i) =>
    store.create({ kind: 'vm', name: `vm-${i}`, spec: { image: 'debian', machineType: 'small', ...(i % 10 === 0 ? { placement: { spreadKey: `svc-${i % 1000}` } } : {}) } }, by),
  );
  const latencies: number[] = [];
  const ac = new AbortController();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let first = 0;
  const observeCommit = (m: number) => {
    first ||= performance.now() - m;
    latencies.push(m);
  };
  const run = new Scheduler({ store, logger: silentLogger(), clock: systemClock, observeCommit }).run(ac.signal);
  while (latencies.length < vms) await new Promise((r) => setTimeout(r, 20));
  const end = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const secs = (end - t0) / 1000;
  ac.abort();
  await run;
  const s = summarize(latencies);
  console.log(`placements: ${vms} VMs onto ${nodes} nodes in ${secs.toFixed(1)} s = ${(vms / secs).toFixed(0)}/s (durable, includes the initial list)`);
  console.log(`initial list ${((first - t0) / 1000).toFixed(1)} s, then ${(vms / ((end - first) / 1000)).toFixed(0)} placements/s from the first decision`);
  console.log(`decision -> commit: p50 ${ms(s.p50)}, p99 ${ms(s.p99)}`);
  // CPU time is what machine load distorts least: it tells a cheaper write from a quieter machine.
  console.log(`CPU per placement (this process, initial list included): ${((cpu.user + cpu.system) / vms).toFixed(0)} µs`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
