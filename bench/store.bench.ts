/**
 * Store benchmark (DESIGN.md §10): creates/s, get and filtered-list latency,
 * one write fanned out to 1,000 watchers, resident memory — with N VMs in a
 * SQLite store on disk. Usage: node --import tsx bench/store.bench.ts [N] [durability]
 */
import { setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSelector } from '../src/api/selector.ts';
import { seedBasics } from '../src/store/conformance.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { mib, ms, summarize } from './stats.ts';

const total = Number(process.argv[2] ?? 100_000);
const durability = (process.argv[3] ?? 'full') as 'full' | 'process';
const dir = mkdtempSync(join(tmpdir(), 'crowd-bench-'));
const store = new SqliteStore({ path: join(dir, 'bench.db'), durability });
const by = { author: 'bench' };

try {
  await seedBasics(store);
  const inFlight = 256;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) {
        const i = next++;
        await store.create(
          {
            kind: 'vm',
            name: `vm-${i}`,
            labels: { app: `app-${i % 1000}`, env: i % 2 ? 'prod' : 'dev', tier: ['web', 'api', 'db'][i % 3]! },
            metadata: { owner: `team-${i % 50}`, ticket: i },
            spec: { image: 'debian', machineType: 'small', nics: [{ network: 'lan' }], power: 'running' },
          },
          by,
        );
      }
    }),
  );
  const createSecs = (performance.now() - t0) / 1000;
  console.log(`creates: ${total} VMs in ${createSecs.toFixed(1)} s = ${(total / createSecs).toFixed(0)}/s (durability ${durability}, ${inFlight} in flight)`);

  const gets: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const s = performance.now();
    await store.get({ kind: 'vm', idOrName: `vm-${(i * 7919) % total}` });
    gets.push(performance.now() - s);
  }
  const g = summarize(gets);
  console.log(`get: p50 ${ms(g.p50)}, p99 ${ms(g.p99)}`);

  const lists: number[] = [];
  for (let i = 0; i < 500; i++) {
    const s = performance.now();
    const page = await store.list({ kind: 'vm', selector: parseSelector(`app=app-${i % 1000}`), limit: 1000 });
    lists.push(performance.now() - s);
    if (page.items.length !== Math.floor(total / 1000)) throw new Error(`expected ${total / 1000} items, got ${page.items.length}`);
  }
  const l = summarize(lists);
  console.log(`filtered list (${total / 1000} of ${total} by label): p50 ${ms(l.p50)}, p99 ${ms(l.p99)}`);

  const watchers = 1000;
  const rounds = 50;
  const fanout: number[] = [];
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  let revNow = await store.revision();
  const arrivals: number[][] = Array.from({ length: rounds }, () => []);
  const done = Array.from({ length: watchers }, async () => {
    let k = 0;
    for await (const _ of store.watch({ kinds: ['site'], fromRevision: revNow }, ac.signal)) {
      arrivals[k]!.push(performance.now());
      if (++k === rounds) return;
    }
  });
  for (let r = 0; r < rounds; r++) {
    const s = performance.now();
    await store.create({ kind: 'site', name: `fan-${r}`, spec: {} }, by);
    while (arrivals[r]!.length < watchers) await new Promise((res) => setImmediate(res));
    fanout.push(Math.max(...arrivals[r]!) - s);
  }
  await Promise.all(done);
  ac.abort();
  revNow = await store.revision();
  const f = summarize(fanout);
  console.log(`fan-out of one write to ${watchers} watchers (last delivery): p50 ${ms(f.p50)}, p99 ${ms(f.p99)}`);
  console.log(`resident memory: ${mib(process.memoryUsage().rss)} with ${total} VMs`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
