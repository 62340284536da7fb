/**
 * API benchmark (DESIGN.md §10): with N VMs and H hosts in a SQLite store on
 * disk, over real HTTP on loopback: mutation / get / full-list latency, one
 * write fanned out to W watchers, and the process's resident memory.
 * Usage: node --import tsx bench/api.bench.ts [vms] [hosts] [watchers]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { Pool } from 'undici';
import { AdminOnlyAuthorizer } from '../src/auth/authorizer.ts';
import { AuthChain } from '../src/auth/chain.ts';
import { hashToken, StaticTokenAuthenticator } from '../src/auth/static-token.ts';
import { silentLogger } from '../src/base/logger.ts';
import { buildApp } from '../src/server/app.ts';
import { seedBasics } from '../src/store/conformance.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { mib, ms, summarize } from './stats.ts';

const vms = Number(process.argv[2] ?? 150_000);
const hosts = Number(process.argv[3] ?? 5000);
const watchers = Number(process.argv[4] ?? 1000);
const token = 'bench-token';
const dir = mkdtempSync(join(tmpdir(), 'crowd-bench-'));
const store = new SqliteStore({ path: join(dir, 'api.db') });
const by = { author: 'bench' };

async function parallel(n: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await fn(next++);
  }));
}

async function timed(samples: number, width: number, fn: (i: number) => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  await parallel(samples, width, async (i) => {
    const s = performance.now();
    await fn(i);
    out.push(performance.now() - s);
  });
  return out;
}

const app = await buildApp({
  store,
  auth: new AuthChain([new StaticTokenAuthenticator([{ name: 'admin', sha256: hashToken(token) }])]),
  authorizer: new AdminOnlyAuthorizer(),
  logger: silentLogger(),
  watchBookmarkMs: 3_600_000,
});
try {
  await seedBasics(store);
  await store.create({ kind: 'site', name: 'a', spec: {} }, by);
  const t0 = performance.now();
  await parallel(hosts, 256, (i) =>
    store.create({ kind: 'node', name: `n${i}`, spec: { site: 'a', arch: 'x86_64', capacity: { cpus: 64, memoryMiB: 262144, diskGiB: 2000 } }, status: { phase: 'ready' } }, by),
  );
  await parallel(vms, 256, (i) =>
    store.create(
      {
        kind: 'vm',
        name: `vm-${i}`,
        labels: { app: `app-${i % 1000}`, env: i % 2 ? 'prod' : 'dev' },
        metadata: { owner: `team-${i % 50}` },
        spec: { image: 'debian', machineType: 'small', nics: [{ network: 'lan' }] },
        status: { phase: 'running', node: `n${i % hosts}` },
      },
      by,
    ),
  );
  console.log(`seeded ${vms} VMs and ${hosts} nodes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  await app.listen({ host: '127.0.0.1', port: 0 });
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const pool = new Pool(origin, { connections: 16 });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const request = async (method: 'GET' | 'PATCH' | 'POST', path: string, body?: unknown) => {
    const res = await pool.request({ method, path, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 200)}`);
    return text;
  };

  // How late the event loop ran meanwhile: on a loaded machine the get tail follows it, not the request's own work.
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const gets = summarize(await timed(5000, 8, async (i) => void (await request('GET', `/v1/vms/vm-${(i * 7919) % vms}`))));
  loop.disable();
  console.log(`get: p50 ${ms(gets.p50)}, p99 ${ms(gets.p99)} (8 clients); event loop delay meanwhile p99 ${ms(loop.percentile(99) / 1e6)}, max ${ms(loop.max / 1e6)}`);
  const muts = summarize(
    await timed(2000, 8, async (i) => void (await request('PATCH', `/v1/vms/vm-${(i * 104729) % vms}`, { labels: { touched: String(i) } }))),
  );
  console.log(`mutation (PATCH, durable): p50 ${ms(muts.p50)}, p99 ${ms(muts.p99)} (8 clients)`);
  const filtered = summarize(await timed(500, 4, async (i) => void (await request('GET', `/v1/vms?selector=app%3Dapp-${i % 1000}`))));
  console.log(`filtered list (${vms / 1000} of ${vms}): p50 ${ms(filtered.p50)}, p99 ${ms(filtered.p99)}`);
  // The client shares this process: decoding every page here would add its cost to the server's. Walks that
  // read only each page's continue token measure the server; one decoding walk counts the VMs and shows the sum.
  const walk = async (decode: boolean): Promise<{ ms: number; n: number }> => {
    const s = performance.now();
    let cont: string | undefined;
    let n = 0;
    do {
      const text = await request('GET', `/v1/vms?limit=1000${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
      if (decode) {
        const page = JSON.parse(text) as { items: unknown[]; continue?: string };
        n += page.items.length;
        cont = page.continue;
      } else {
        const tail = /"continue":("[^"]*")\}$/.exec(text);
        cont = tail ? (JSON.parse(tail[1]!) as string) : undefined;
      }
    } while (cont);
    return { ms: performance.now() - s, n };
  };
  const decoded = await walk(true);
  if (decoded.n !== vms) throw new Error(`full list saw ${decoded.n} VMs`);
  const fulls = [(await walk(false)).ms, (await walk(false)).ms, (await walk(false)).ms];
  console.log(`full list of ${vms} VMs (pages of 1000), server: best ${ms(Math.min(...fulls))}, worst ${ms(Math.max(...fulls))}; with the client decoding every page: ${ms(decoded.ms)}`);
  console.log(`resident memory (server and bench client in one process): ${mib(process.memoryUsage().rss)}`);

  const watchPool = new Pool(origin, { connections: watchers + 1, pipelining: 0 });
  const rev = JSON.parse(await request('GET', '/v1/vms?limit=1')).revision as number;
  const seen: number[][] = [];
  const streams = await Promise.all(
    Array.from({ length: watchers }, async () => {
      const res = await watchPool.request({ method: 'GET', path: `/v1/watch?kinds=site&revision=${rev}`, headers: { authorization: headers.authorization, accept: 'application/x-ndjson' } });
      let buf = '';
      res.body.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const ev = JSON.parse(line) as { type: string; object?: { name: string } };
          if (ev.type !== 'put') continue;
          const round = Number(ev.object!.name.slice(4));
          (seen[round] ??= []).push(performance.now());
        }
      });
      return res.body;
    }),
  );
  const fan: number[] = [];
  for (let r = 0; r < 30; r++) {
    const s = performance.now();
    await request('POST', '/v1/sites', { name: `fan-${r}`, spec: {} });
    const deadline = Date.now() + 10_000;
    while ((seen[r]?.length ?? 0) < watchers && Date.now() < deadline) await new Promise((res) => setImmediate(res));
    if ((seen[r]?.length ?? 0) < watchers) throw new Error(`round ${r}: only ${seen[r]?.length ?? 0} watchers got the write`);
    fan.push(Math.max(...seen[r]!) - s);
  }
  const f = summarize(fan);
  console.log(`one write to ${watchers} HTTP watchers (last delivery): p50 ${ms(f.p50)}, p99 ${ms(f.p99)}`);
  for (const s of streams) {
    s.on('error', () => undefined);
    s.destroy();
  }
  await watchPool.destroy();
  await pool.close();
} finally {
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
