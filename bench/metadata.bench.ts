/**
 * Metadata service benchmark (DESIGN.md §10): G simulated guests on loopback,
 * each with its own source address (127.0.1.x, so `identify` tells them apart
 * as the agent does by pinned IP), C requests in flight per guest, a mix of
 * EC2 and OpenStack paths; requests/s, p99, and memory held per guest.
 * Usage: node --import tsx bench/metadata.bench.ts [guests] [seconds]
 */
import { connect, type AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { exampleGuest } from '../src/metadata/example-guest.ts';
import type { GuestInfo } from '../src/metadata/guest-info.ts';
import { MetadataService } from '../src/metadata/metadata-service.ts';
import { mib, ms, summarize } from './stats.ts';

const guests = Number(process.argv[2] ?? 100);
const seconds = Number(process.argv[3] ?? 5);
const inFlightPerGuest = 2;
const paths = ['/latest/meta-data/instance-id', '/latest/meta-data/', '/openstack/latest/meta_data.json', '/2009-04-04/meta-data/instance-id', '/openstack/latest/network_data.json'];

const byAddress = new Map<string, GuestInfo>();
for (let i = 0; i < guests; i++) {
  const base = exampleGuest();
  byAddress.set(`127.0.1.${i + 1}`, { ...base, instanceId: `vm_${String(i).padStart(26, '0')}`, name: `guest-${i}` });
}
const before = process.memoryUsage().heapUsed;
const service = new MetadataService({ identify: (c) => byAddress.get(c.remoteAddress.replace(/^::ffff:/, '')) });
const [addr] = (await service.listen([{ host: '127.0.0.1', port: 0 }])) as [AddressInfo];
const origin = `http://127.0.0.1:${addr.port}`;

const latencies: number[] = [];
let done = 0;
const deadline = performance.now() + seconds * 1000;
/** A client whose connections leave from one guest's address (undici's own connector ignores localAddress). */
function guestClient(ip: string): Agent {
  return new Agent({
    connections: inFlightPerGuest,
    connect: (opts, callback) => {
      const socket = connect({ host: opts.hostname, port: Number(opts.port), localAddress: ip });
      socket.once('connect', () => callback(null, socket));
      socket.once('error', (e) => callback(e, null));
    },
  });
}
const clients = [...byAddress.keys()].map(guestClient);
const t0 = performance.now();
await Promise.all(
  clients.flatMap((dispatcher, g) =>
    Array.from({ length: inFlightPerGuest }, async (_, k) => {
      let n = g + k;
      while (performance.now() < deadline) {
        const s = performance.now();
        const res = await request(`${origin}${paths[n++ % paths.length]}`, { dispatcher });
        await res.body.text();
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
        latencies.push(performance.now() - s);
        done++;
      }
    }),
  ),
);
const secs = (performance.now() - t0) / 1000;
const l = summarize(latencies);
console.log(`${guests} guests × ${inFlightPerGuest} in flight: ${(done / secs).toFixed(0)} req/s host-wide, ${(done / secs / guests).toFixed(0)} req/s per guest`);
console.log(`latency: p50 ${ms(l.p50)}, p99 ${ms(l.p99)}`);
console.log(`heap held after rendering every guest's documents: ${mib(process.memoryUsage().heapUsed - before)} for ${guests} guests (load generator included)`);
await Promise.all(clients.map((c) => c.close()));
await service.close();
