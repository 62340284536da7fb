/**
 * Metadata service benchmark (DESIGN.md §10): G simulated guests on loopback,
 * each with its own source address (127.0.1.x, so `identify` tells them apart
 * as the agent does by pinned IP), 2 keep-alive connections per guest with one
 * request in flight each, a mix of EC2 and OpenStack paths. The service runs on
 * the main thread; the load generator (a minimal HTTP/1.1 client on raw
 * sockets) runs in a worker thread so it does not starve the server. Prints the
 * load average, requests/s host-wide and for one guest alone, p50/p99, the
 * service thread's CPU time per request (far less sensitive to other load on
 * the machine than the rates), and the heap the rendered documents hold per VM.
 * Usage: node --import tsx bench/metadata.bench.ts [guests] [seconds]
 */
import { readFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { exampleGuest } from '../src/metadata/example-guest.ts';
import type { GuestInfo } from '../src/metadata/guest-info.ts';
import { MetadataService } from '../src/metadata/metadata-service.ts';
import { mib, ms, summarize } from './stats.ts';

/** What one load run is asked to do, and what it reports back. */
interface LoadJob {
  port: number;
  sources: string[];
  connectionsPerGuest: number;
  seconds: number;
  /** Paced: each guest asks at most this often per second (open loop, as at a target rate); unset: as fast as answers come. */
  ratePerGuest?: number;
}
interface LoadResult {
  done: number;
  seconds: number;
  latencies: Float64Array;
}

const paths = ['/latest/meta-data/instance-id', '/latest/meta-data/', '/openstack/latest/meta_data.json', '/2009-04-04/meta-data/instance-id', '/openstack/latest/network_data.json'];

/** One keep-alive connection from `source`: request, read the whole answer (200 or it fails), repeat (paced when asked) until the deadline. */
function drive(job: LoadJob, source: string, first: number, deadline: number, latencies: number[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: job.port, localAddress: source, noDelay: true });
    const interval = job.ratePerGuest ? (1000 * job.connectionsPerGuest) / job.ratePerGuest : 0;
    let next = performance.now() + Math.random() * interval;
    let buf: Buffer = Buffer.alloc(0);
    let n = first;
    let started = 0;
    let count = 0;
    const send = () => {
      const now = performance.now();
      if (now >= deadline) {
        socket.end();
        return resolve(count);
      }
      if (now < next) return void setTimeout(send, next - now);
      next += interval;
      started = now;
      socket.write(`GET ${paths[n++ % paths.length]} HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n`);
    };
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.toString('latin1', 0, end);
      if (!head.startsWith('HTTP/1.1 200 ')) return reject(new Error(`unexpected answer: ${head.split('\r\n')[0]}`));
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
      if (buf.length < end + 4 + length) return;
      buf = buf.subarray(end + 4 + length);
      latencies.push(performance.now() - started);
      count++;
      send();
    });
    socket.on('connect', send);
    socket.on('error', reject);
  });
}

/** The worker: every guest's connections until the deadline. */
async function load(job: LoadJob): Promise<LoadResult> {
  const latencies: number[] = [];
  const t0 = performance.now();
  const deadline = t0 + job.seconds * 1000;
  const counts = await Promise.all(job.sources.flatMap((ip, g) => Array.from({ length: job.connectionsPerGuest }, (_, k) => drive(job, ip, g + k, deadline, latencies))));
  return { done: counts.reduce((a, b) => a + b, 0), seconds: (performance.now() - t0) / 1000, latencies: Float64Array.from(latencies) };
}

/** Runs one load in a worker thread and waits for its figures. */
function inWorker(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    // A worker does not inherit `--import tsx`: its entry registers tsx, then loads this file.
    const entry = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(import.meta.url)});`;
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(entry)}`), { workerData: job });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

/** CPU seconds the main (service) thread has used: Linux's per-thread counters, so other load on the machine does not count. */
function serviceCpuSeconds(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs one load and prints its figures, with the service thread's CPU time per request (what the service would do on a core of its own). */
async function measure(what: string, job: LoadJob): Promise<void> {
  const cpu = serviceCpuSeconds();
  const r = await inWorker(job);
  const perRequest = (serviceCpuSeconds() - cpu) / r.done;
  const l = summarize([...r.latencies]);
  const rate = r.done / r.seconds;
  console.log(`${what}: ${rate.toFixed(0)} req/s, ${(rate / job.sources.length).toFixed(0)} req/s per guest, latency p50 ${ms(l.p50)}, p99 ${ms(l.p99)}`);
  console.log(`  service thread CPU ${(perRequest * 1e6).toFixed(1)} µs per request → ${(1 / perRequest).toFixed(0)} req/s on one core of its own`);
}

async function main(): Promise<void> {
  const guests = Number(process.argv[2] ?? 100);
  const seconds = Number(process.argv[3] ?? 5);
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const byAddress = new Map<string, GuestInfo>();
  for (let i = 0; i < guests; i++) {
    const base = exampleGuest();
    byAddress.set(`127.0.1.${i + 1}`, { ...base, instanceId: `vm_${String(i).padStart(26, '0')}`, name: `guest-${i}` });
  }
  const service = new MetadataService({ identify: (c) => byAddress.get(c.remoteAddress) });
  gc();
  const before = process.memoryUsage().heapUsed;
  for (const g of byAddress.values()) service.documentsOf(g);
  gc();
  const perVm = (process.memoryUsage().heapUsed - before) / guests;
  const [addr] = (await service.listen([{ host: '127.0.0.1', port: 0 }])) as [AddressInfo];
  const sources = [...byAddress.keys()];
  const avg = () => loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`load average before: ${avg()}`);
  await measure(`${guests} guests × 2 connections`, { port: addr.port, sources, connectionsPerGuest: 2, seconds });
  await measure(`${guests} guests × 1 connection paced at ${20_000 / guests} req/s each (20,000 req/s offered)`, { port: addr.port, sources, connectionsPerGuest: 1, seconds, ratePerGuest: 20_000 / guests });
  await measure('1 guest alone × 2 connections', { port: addr.port, sources: sources.slice(0, 1), connectionsPerGuest: 2, seconds: Math.min(seconds, 3) });
  console.log(`load average after: ${avg()}`);
  console.log(`heap held by each VM's rendered documents: ${(perVm / 1024).toFixed(1)} KiB (${mib(perVm * guests)} for ${guests})`);
  await service.close();
}

if (isMainThread) await main();
else parentPort!.postMessage(await load(workerData as LoadJob));
