/**
 * API benchmark (DESIGN.md §10): with N VMs and H hosts in a SQLite store on
 * disk, over real HTTP on loopback: mutation / get / full-list latency, one
 * write fanned out to W watchers, and the process's resident memory. The
 * server runs on the main thread; the load generator (get clients, the W
 * watchers and their parsing) runs in a worker thread so that it does not
 * share the server's event loop. Prints the load average, and for the gets
 * and the fan-out the server thread's event loop delay and CPU time.
 * Usage: node --import tsx bench/api.bench.ts [vms] [hosts] [watchers]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Pool } from 'undici';
import { AdminOnlyAuthorizer } from '../src/auth/authorizer.ts';
import { AuthChain } from '../src/auth/chain.ts';
import { hashToken, StaticTokenAuthenticator } from '../src/auth/static-token.ts';
import { silentLogger } from '../src/base/logger.ts';
import { buildApp } from '../src/server/app.ts';
import { seedBasics } from '../src/store/conformance.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { mib, ms, summarize } from './stats.ts';

/** What the load worker is asked to do. */
interface LoadJob {
  origin: string;
  token: string;
  vms: number;
  watchers: number;
}
/** What the worker tells the server thread: a phase starts or ends (to watch its loop), a line to print, or the end. */
type FromWorker = { phase: 'gets' | 'fan'; start: boolean; count?: number } | { log: string } | { done: true };

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

/** The load generator, in the worker: every client phase against the server at `origin`. */
async function load(job: LoadJob, post: (m: FromWorker) => void): Promise<void> {
  const { origin, vms, watchers } = job;
  const log = (line: string) => post({ log: line });
  const pool = new Pool(origin, { connections: 16 });
  const headers = { authorization: `Bearer ${job.token}`, 'content-type': 'application/json' };
  const request = async (method: 'GET' | 'PATCH' | 'POST', path: string, body?: unknown) => {
    const res = await pool.request({ method, path, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 200)}`);
    return text;
  };

  const getCount = 5000;
  post({ phase: 'gets', start: true });
  const gets = summarize(await timed(getCount, 8, async (i) => void (await request('GET', `/v1/vms/vm-${(i * 7919) % vms}`))));
  post({ phase: 'gets', start: false, count: getCount });
  log(`get: p50 ${ms(gets.p50)}, p99 ${ms(gets.p99)} (8 clients)`);
  const muts = summarize(
    await timed(2000, 8, async (i) => void (await request('PATCH', `/v1/vms/vm-${(i * 104729) % vms}`, { labels: { touched: String(i) } }))),
  );
  log(`mutation (PATCH, durable): p50 ${ms(muts.p50)}, p99 ${ms(muts.p99)} (8 clients)`);
  const filtered = summarize(await timed(500, 4, async (i) => void (await request('GET', `/v1/vms?selector=app%3Dapp-${i % 1000}`))));
  log(`filtered list (${vms / 1000} of ${vms}): p50 ${ms(filtered.p50)}, p99 ${ms(filtered.p99)}`);
  // Walks that read only each page's continue token measure the server; one decoding walk counts the VMs and shows the sum.
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
  log(`full list of ${vms} VMs (pages of 1000), server: best ${ms(Math.min(...fulls))}, worst ${ms(Math.max(...fulls))}; with the client decoding every page: ${ms(decoded.ms)}`);

  const watchPool = new Pool(origin, { connections: watchers + 1, pipelining: 0 });
  const rev = JSON.parse(await request('GET', '/v1/vms?limit=1')).revision as number;
  // Per round: how many watchers got it, when the first and the last did, and who waits for the last one.
  const rounds: { got: number; first: number; last: number; all?: () => void }[] = [];
  const round = (r: number) => (rounds[r] ??= { got: 0, first: 0, last: 0 });
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
          const r = round(Number(ev.object!.name.slice(4)));
          r.last = performance.now();
          if (r.got++ === 0) r.first = r.last;
          if (r.got === watchers) r.all?.();
        }
      });
      return res.body;
    }),
  );
  const fan: number[] = [];
  const first: number[] = [];
  const answered: number[] = [];
  const writes = 100;
  post({ phase: 'fan', start: true });
  for (let i = 0; i < writes; i++) {
    const r = round(i);
    const all = new Promise<void>((resolve, reject) => {
      r.all = resolve;
      setTimeout(() => reject(new Error(`round ${i}: only ${r.got} watchers got the write`)), 10_000).unref();
    });
    const s = performance.now();
    await request('POST', '/v1/sites', { name: `fan-${i}`, spec: {} });
    answered.push(performance.now() - s);
    if (r.got < watchers) await all;
    fan.push(r.last - s);
    first.push(r.first - s);
  }
  post({ phase: 'fan', start: false, count: writes });
  const f = summarize(fan);
  const f1 = summarize(first);
  const spread = summarize(fan.map((x, i) => x - first[i]!));
  const a = summarize(answered);
  log(`one write to ${watchers} HTTP watchers (last delivery): p50 ${ms(f.p50)}, p99 ${ms(f.p99)}`);
  log(`  first delivery p50 ${ms(f1.p50)}, p99 ${ms(f1.p99)}; first to last p50 ${ms(spread.p50)}, p99 ${ms(spread.p99)}; the write answered p50 ${ms(a.p50)}, p99 ${ms(a.p99)}`);
  for (const s of streams) {
    s.on('error', () => undefined);
    s.destroy();
  }
  await watchPool.destroy();
  await pool.close();
}

/** CPU seconds the main (server) thread has used, in user space and in the kernel: Linux's per-thread counters, so the worker and other load do not count. */
function serverCpuSeconds(): { user: number; sys: number } {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) / 100, sys: Number(fields[12]) / 100 };
}

/** Runs the load in a worker thread; prints its lines and, per phase, the server thread's loop delay and CPU. */
function inWorker(job: LoadJob): Promise<void> {
  const loop = monitorEventLoopDelay({ resolution: 1 });
  let cpu = { user: 0, sys: 0 };
  return new Promise((resolve, reject) => {
    // A worker does not inherit `--import tsx`: its entry registers tsx, then loads this file.
    const entry = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(import.meta.url)});`;
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(entry)}`), { workerData: job });
    w.on('message', (m: FromWorker) => {
      if ('log' in m) console.log(m.log);
      else if ('done' in m) resolve();
      else if (m.start) {
        loop.reset();
        loop.enable();
        cpu = serverCpuSeconds();
      } else {
        loop.disable();
        const now = serverCpuSeconds();
        const per = (s: number) => ms((s / m.count!) * 1000);
        const what = m.phase === 'gets' ? 'get' : 'write';
        console.log(`  server thread during the ${m.phase === 'gets' ? 'gets' : 'fan-out'}: event loop delay p99 ${ms(loop.percentile(99) / 1e6)}, max ${ms(loop.max / 1e6)}; CPU ${per(now.user + now.sys - cpu.user - cpu.sys)} per ${what} (kernel ${per(now.sys - cpu.sys)})`);
      }
    });
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`load worker exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const vms = Number(process.argv[2] ?? 150_000);
  const hosts = Number(process.argv[3] ?? 5000);
  const watchers = Number(process.argv[4] ?? 1000);
  const token = 'bench-token';
  const dir = mkdtempSync(join(tmpdir(), 'crowd-bench-'));
  const store = new SqliteStore({ path: join(dir, 'api.db') });
  const by = { author: 'bench' };
  const avg = () => loadavg().map((x) => x.toFixed(2)).join(' ');
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
    console.log(`load average before: ${avg()}`);
    await inWorker({ origin: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, token, vms, watchers });
    console.log(`load average after: ${avg()}`);
    console.log(`resident memory (server and load worker in one process): ${mib(process.memoryUsage().rss)}`);
  } finally {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread) await main();
else {
  await load(workerData as LoadJob, (m) => parentPort!.postMessage(m));
  parentPort!.postMessage({ done: true } satisfies FromWorker);
}
