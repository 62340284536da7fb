/**
 * WAN and partition benchmark (DESIGN.md §10, last two rows), printing figures.
 *
 * Two network namespaces joined by a veth with 5 % loss each way (nftables); the
 * server (HTTP + scheduler + lease monitor over a SQLite file) runs in one, and
 * in the other a process runs several real agents with the fake driver, which
 * reach the server through a TCP proxy adding 150 ms each way (300 ms RTT).
 *
 *   1. site-local writes (create + PATCH) at the server with no WAN agents;
 *   2. the agents' VMs started across the WAN;
 *   3. power changes made at the server → the remote driver performs them → status back,
 *      with the same site-local writes running meanwhile;
 *   4. partitions (every packet dropped) of 1 s, 10 s, 60 s, optionally a long real one,
 *      and 24 h simulated by moving both sides' injected clocks: VM restarts,
 *      duplicates, evictions, and heal → converged.
 *
 * Usage (root): node --import tsx bench/wan.bench.ts [agents] [vms per agent] [long partition s] [plain]   (default 4 60 0)
 * The agents use `crowd agent`'s request timeouts and watch idle check (agentLiveness) against the server's
 * default bookmark interval; `plain` runs them without (plain fetch, bookmarks every 30 s), as before that fix.
 * The processes inside the namespaces are this file again, with `site` / `remote` as first argument.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pino from 'pino';
import type { NodeStatus } from '../src/api/kinds/node.ts';
import type { VmStatus } from '../src/api/kinds/vm.ts';
import type { AnyObject } from '../src/api/object.ts';
import { Agent } from '../src/agent/agent.ts';
import { AgentCache } from '../src/agent/agent-cache.ts';
import { FakeDriver } from '../src/agent/drivers/fake-driver.ts';
import type { StopOptions, VmInfo } from '../src/agent/drivers/driver.ts';
import type { VmConfig } from '../src/agent/drivers/vm-config.ts';
import { systemClock, type Clock } from '../src/base/clock.ts';
import { silentLogger } from '../src/base/logger.ts';
import { Client } from '../src/client/client.ts';
import { Enrolment } from '../src/server/enrolment.ts';
import { runLeaseMonitor } from '../src/server/scheduler/node-lease.ts';
import { listAll } from '../src/store/list-all.ts';
import { adminToken, BenchServer, by, countWhile, now, readyImage } from './bench-server.ts';
import { ms, summarize } from './stats.ts';
import { agentLiveness } from '../src/agent/main.ts';
import { livenessFetch } from '../src/base/liveness-fetch.ts';
import { delayProxy, WanLink } from './wan-link.ts';

const self = import.meta.filename;
const oneWayMs = 150;
const lossPercent = 5;
/** As in src/server/main.ts. */
const leaseMs = 40_000;
const day = 24 * 3600 * 1000;

/** The system clock plus an offset both sides move together: a simulated long partition. */
class OffsetClock implements Clock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(ms, signal);
  }
}

/** Site → remote. */
type ToRemote =
  | { t: 'config'; targetHost: string; targetPort: number; agents: { node: string; credential: string }[]; plain: boolean }
  | { t: 'advance'; ms: number }
  | { t: 'credential'; node: string; credential: string }
  | { t: 'check' }
  | { t: 'stop' };
/** Remote → site. */
type FromRemote =
  | { t: 'ready' }
  | { t: 'op'; op: 'start' | 'stop' | 'destroy'; vm: string; node: string; at: number }
  | { t: 'check'; duplicates: string[]; running: number; logs: Record<string, { count: number; last?: string }> }
  | { t: 'stopped' };

// ---- the remote site: agents with an instrumented fake driver behind the delaying proxy ----

async function remote(): Promise<void> {
  const send = (m: FromRemote) => process.connected && process.send!(m);
  const [config] = (await once(process, 'message')) as [Extract<ToRemote, { t: 'config' }>];
  const clock = new OffsetClock();
  const proxy = await delayProxy({ listenHost: '127.0.0.1', targetHost: config.targetHost, targetPort: config.targetPort, delayMs: oneWayMs });
  const credentials = new Map(config.agents.map((a) => [a.node, a.credential]));
  /** What the agents logged, by message: how they saw the WAN. */
  const logs: Record<string, { count: number; last?: string }> = {};
  const logger = pino({ level: 'info' }, {
    write(line: string) {
      const { msg, err } = JSON.parse(line) as { msg: string; err?: string };
      const entry = (logs[msg] ??= { count: 0 });
      entry.count++;
      if (err) entry.last = String(err).slice(0, 200);
    },
  });
  const fetchFn = config.plain ? undefined : livenessFetch(fetch, agentLiveness);
  const drivers: FakeDriver[] = [];
  const stops: AbortController[] = [];
  const runs: Promise<void>[] = [];
  const caches: AgentCache[] = [];
  for (const { node } of config.agents) {
    /** The fake driver, telling the site when it acts. */
    class TimedDriver extends FakeDriver {
      override async start(c: VmConfig): Promise<VmInfo> {
        send({ t: 'op', op: 'start', vm: c.id, node, at: now() });
        return super.start(c);
      }
      override async stop(id: string, o?: StopOptions): Promise<VmInfo> {
        send({ t: 'op', op: 'stop', vm: id, node, at: now() });
        return super.stop(id, o);
      }
      override async destroy(id: string): Promise<void> {
        send({ t: 'op', op: 'destroy', vm: id, node, at: now() });
        return super.destroy(id);
      }
    }
    const driver = new TimedDriver();
    const cache = new AgentCache(':memory:');
    const agent = new Agent({
      node,
      client: () => new Client({ baseUrl: proxy.url, authorization: `Bearer ${credentials.get(node)}`, ...(fetchFn ? { fetch: fetchFn } : {}) }),
      driver,
      cache,
      clock,
      logger: logger.child({ node }),
      host: { accel: 'tcg', imagePath: () => ({ path: '/fake/busybox.qcow2', format: 'qcow2' }) },
    });
    const ac = new AbortController();
    drivers.push(driver);
    stops.push(ac);
    caches.push(cache);
    runs.push(agent.run(ac.signal));
  }
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (m: ToRemote) => {
    if (m.t === 'advance') clock.offset += m.ms;
    else if (m.t === 'credential') credentials.set(m.node, m.credential);
    else if (m.t === 'check') {
      const where = new Map<string, number>();
      for (const d of drivers) for (const vm of await d.list()) if (vm.state === 'running') where.set(vm.id, (where.get(vm.id) ?? 0) + 1);
      send({ t: 'check', duplicates: [...where].filter(([, n]) => n > 1).map(([id]) => id), running: where.size, logs });
    } else if (m.t === 'stop') {
      for (const ac of stops) ac.abort();
      await proxy.close();
      await Promise.all(runs);
      for (const c of caches) c.close();
      send({ t: 'stopped' });
      process.disconnect();
    }
  });
  send({ t: 'ready' });
}

// ---- the server site: server, local client, measurements ----

interface Intent {
  vm: string;
  want: 'running' | 'stopped';
  at: number;
  /** How long the PATCH took to answer. */
  accepted?: number;
  applied?: number;
  reported?: number;
}

/** Polls `check` until it holds or `ms` pass; whether it held. */
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await delay(20);
  }
  return true;
}

function line(what: string, xs: number[]): void {
  const s = summarize(xs);
  console.log(`  ${what.padEnd(50)} p50 ${ms(s.p50).padStart(9)}  p99 ${ms(s.p99).padStart(9)}  max ${ms(s.max).padStart(9)}  (n=${xs.length})`);
}

/** What the outer process hands the site process. */
interface SiteOptions {
  tag: string;
  agents: number;
  perAgent: number;
  /** A real partition of this many seconds besides 1, 10 and 60 (0: none). */
  longS: number;
  /** Agents without `crowd agent`'s request timeouts and watch idle check, and server bookmarks every 30 s. */
  plain: boolean;
}

async function site(o: SiteOptions): Promise<void> {
  const link = new WanLink(o.tag);
  const dir = mkdtempSync(join(tmpdir(), 'crowd-bench-wan-'));
  const clock = new OffsetClock();
  const server = new BenchServer(join(dir, 'crowd.db'), { host: link.serverIp, clock, ...(o.plain ? { watchBookmarkMs: 30_000 } : {}) });
  const stop = new AbortController();
  let child: ChildProcess | undefined;
  try {
    await server.start();
    const store = server.store;
    const leases = runLeaseMonitor({ store, clock, logger: silentLogger() }, leaseMs, stop.signal);
    await store.create({ kind: 'machine-type', name: 'tiny', spec: { cpus: 1, memoryMiB: 128, diskGiB: 1 } }, by);
    await readyImage(store, 'busybox');
    const admin = new Client({ baseUrl: server.url, authorization: `Bearer ${adminToken}` });

    /** Sequential create + PATCH by a client next to the server: the site-local writes. */
    const localWrites = async (prefix: string, n: number) => {
      const creates: number[] = [];
      const patches: number[] = [];
      for (let i = 0; i < n; i++) {
        let t = now();
        await admin.vms.create({ name: `${prefix}-${i}`, spec: { image: 'busybox', machineType: 'tiny' } } as never);
        creates.push(now() - t);
        t = now();
        await admin.vms.patch(`${prefix}-${i}`, { labels: { touched: String(i) } });
        patches.push(now() - t);
      }
      return { creates, patches };
    };
    const writes = 300;
    // Warm-up (JIT, connection pool), then the baseline.
    await localWrites('warm', 20);
    for (let i = 0; i < 20; i++) await admin.vms.delete(`warm-${i}`);
    const alone = await localWrites('alone', writes);
    for (let i = 0; i < writes; i++) await admin.vms.delete(`alone-${i}`);

    // Everything the site sees: the agents' driver calls, VM statuses and node heartbeats.
    const intents = new Map<string, Intent>();
    const started = new Set<string>();
    const unexpected = { starts: 0, stops: 0, destroys: 0 };
    const heardAt = new Map<string, number>();
    const nodeUnreachable = { count: 0 };
    const checks: ((m: Extract<FromRemote, { t: 'check' }>) => void)[] = [];
    const onOp = (m: Extract<FromRemote, { t: 'op' }>) => {
      const intent = intents.get(m.vm);
      const wanted = intent && intent.applied === undefined && (intent.want === 'running' ? 'start' : 'stop') === m.op;
      if (wanted) intent.applied = m.at;
      else if (m.op === 'start' && !started.has(m.vm)) started.add(m.vm);
      else unexpected[`${m.op}s`]++;
    };
    const watching = (async () => {
      for await (const ev of store.watch({ kinds: ['vm', 'node'], fromRevision: await store.revision() }, stop.signal)) {
        if (ev.type !== 'put') continue;
        const x = ev.object;
        if (x.kind === 'node') {
          const s = x.status as NodeStatus;
          if (s.phase === 'unreachable') nodeUnreachable.count++;
          else if (s.phase === 'ready') heardAt.set(x.name, now());
          continue;
        }
        const intent = intents.get(x.id);
        if (intent && intent.reported === undefined && (x.status as VmStatus).phase === intent.want) intent.reported = now();
      }
    })().catch(() => undefined);

    // The remote site.
    const agents: { node: string; credential: string }[] = [];
    for (let i = 0; i < o.agents; i++) {
      const node = `remote-${i}`;
      agents.push({ node, credential: await server.enrol(node, o.perAgent * 4, o.perAgent * 4 * 128) });
    }
    child = spawn('ip', ['netns', 'exec', link.remote, process.execPath, '--import', 'tsx', self, 'remote'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const fromRemote = child;
    fromRemote.on('message', (m: FromRemote) => {
      if (m.t === 'op') onOp(m);
      else if (m.t === 'check') checks.shift()?.(m);
    });
    const toRemote = (m: ToRemote) => fromRemote.send(m);
    const check = () => new Promise<Extract<FromRemote, { t: 'check' }>>((r) => (checks.push(r), toRemote({ t: 'check' })));
    const ready = once(fromRemote, 'message');
    toRemote({ t: 'config', targetHost: link.serverIp, targetPort: Number(new URL(server.url).port), agents, plain: o.plain });
    await ready;

    const total = o.agents * o.perAgent;
    console.log(`wan: ${o.agents} remote agents (fake driver, one process), ${total} VMs; link ${2 * oneWayMs} ms RTT (TCP proxy, ${oneWayMs} ms per chunk each way), ${lossPercent} % loss each way (nftables)`);
    console.log(o.plain ? '  plain agents: no request timeout, no watch idle check; server bookmarks every 30 s' : `  agents as crowd agent: requests time out after ${agentLiveness.requestMs / 1000} s, a watch after ${agentLiveness.idleMs / 1000} s without a line; server bookmarks every 5 s`);
    let t = now();
    const allRunning = countWhile(store, (v) => v.status.phase === 'running', (n) => n === total);
    for (let i = 0; i < total; i++) await store.create({ kind: 'vm', name: `vm-${i}`, spec: { image: 'busybox', machineType: 'tiny' } }, by);
    await allRunning;
    console.log(`  ${total} VMs created at the server, all running and reported across the WAN after ${((now() - t) / 1000).toFixed(1)} s`);

    const fleet = (await listAll(store, { kind: 'vm' })).items.filter((v) => v.name.startsWith('vm-'));
    const byNode = new Map<string, AnyObject[]>();
    for (const v of fleet) byNode.set(String(v.status.node), [...(byNode.get(String(v.status.node)) ?? []), v]);
    /** The `k`-th VM of every agent in turn. */
    const pick = (k: number) => {
      const lists = [...byNode.values()];
      const list = lists[k % lists.length]!;
      return list[Math.floor(k / lists.length) % list.length]!;
    };
    const setPower = async (vm: AnyObject, want: 'running' | 'stopped') => {
      const intent: Intent = { vm: vm.id, want, at: now() };
      intents.set(vm.id, intent);
      await admin.vms.patch(vm.id, { spec: { power: want === 'stopped' ? 'stopped' : null } });
      intent.accepted = now() - intent.at;
      return intent;
    };

    // Intent applied across the WAN, with site-local writes meanwhile.
    // Distinct VMs, so that every change is one driver call.
    const changes = Math.min(100, total);
    const made: Intent[] = [];
    const busy = localWrites('busy', writes);
    for (let k = 0; k < changes; k++) {
      const vm = pick(k);
      void setPower(vm, 'stopped').then((i) => made.push(i));
      await delay(100);
    }
    const busyWrites = await busy;
    await until(() => made.length === changes && made.every((i) => i.reported !== undefined), 60_000);
    console.log(`intent applied at the remote site: ${changes} power changes at the server, one per 100 ms, spread over the agents`);
    line('PATCH answered (local client)', made.map((i) => i.accepted!));
    line('change -> remote driver acts', made.filter((i) => i.applied).map((i) => i.applied! - i.at));
    line('change -> status back at the server', made.filter((i) => i.reported).map((i) => i.reported! - i.at));
    const lost = made.filter((i) => i.reported === undefined).length;
    if (lost) console.log(`  ${lost} changes not reported back within 60 s`);
    console.log(`site-local writes, one client next to the server, ${writes} creates + ${writes} PATCHes each`);
    line('create, no WAN agents', alone.creates);
    line('create, remote agents busy over the WAN', busyWrites.creates);
    line('PATCH, no WAN agents', alone.patches);
    line('PATCH, remote agents busy over the WAN', busyWrites.patches);
    const ratio = (a: number[], b: number[]) => (summarize(b).p99 / summarize(a).p99).toFixed(2);
    console.log(`  p99 ratio busy / alone: create ${ratio(alone.creates, busyWrites.creates)}, PATCH ${ratio(alone.patches, busyWrites.patches)}`);
    // Those stopped VMs run again before the partitions.
    const back = await Promise.all(made.map((i) => setPower(fleet.find((v) => v.id === i.vm)!, 'running')));
    await until(() => back.every((i) => i.reported !== undefined), 60_000);

    /** One partition of `realMs`, during which both clocks move `simulatedMs` further. */
    const partition = async (label: string, realMs: number, simulatedMs = 0, convergeMs = 120_000) => {
      const before = new Map((await listAll(store, { kind: 'vm' })).items.map((v) => [v.id, v.status.node]));
      const odd = { ...unexpected };
      const unreachable = nodeUnreachable.count;
      await link.cut();
      const cutAt = now();
      // One change per agent made while it cannot hear it.
      const during = await Promise.all(Array.from({ length: o.agents }, (_, k) => setPower(pick(k + o.agents * 3), 'stopped')));
      if (simulatedMs) {
        clock.offset += simulatedMs;
        toRemote({ t: 'advance', ms: simulatedMs });
      }
      await delay(Math.max(0, realMs - (now() - cutAt)));
      await link.heal();
      const healAt = now();
      // Converged: every agent watches again (it performed the change made while cut off) and reported it; heartbeats come every 10 s besides.
      const heard = () => agents.every((a) => (heardAt.get(a.node) ?? 0) > healAt);
      const converged = await until(() => during.every((i) => i.reported !== undefined), convergeMs);
      await until(heard, converged ? 15_000 : 0);
      const after = (await listAll(store, { kind: 'vm' })).items;
      const evicted = after.filter((v) => before.has(v.id) && before.get(v.id) !== v.status.node).length;
      const state = await check();
      const last = (xs: (number | undefined)[]) => (xs.every((x) => x !== undefined) ? `${((Math.max(...(xs as number[])) - healAt) / 1000).toFixed(1)} s` : 'never');
      console.log(
        `  ${label.padEnd(22)} restarts ${unexpected.starts - odd.starts}, stray stops ${unexpected.stops - odd.stops}, destroys ${unexpected.destroys - odd.destroys}, ` +
          `duplicates ${state.duplicates.length}, evictions ${evicted}, nodes marked unreachable ${nodeUnreachable.count - unreachable}; ` +
          `heal -> ${converged ? `converged ${last(during.map((i) => i.reported))}` : `NOT converged in ${convergeMs / 1000} s`} ` +
          `(changes applied ${last(during.map((i) => i.applied))}; every node heard again ${last(agents.map((a) => heardAt.get(a.node)).map((x) => ((x ?? 0) > healAt ? x : undefined)))})`,
      );
      // Power back on for the next round.
      const on = await Promise.all(during.map((i) => setPower(fleet.find((v) => v.id === i.vm)!, 'running')));
      await until(() => on.every((i) => i.reported !== undefined), 30_000);
      return { converged, state };
    };

    console.log(`partitions (every packet on the link dropped), ${o.agents} changes made during each; lease ${leaseMs / 1000} s, agent heartbeat 10 s`);
    for (const s of [1, 10, 60, ...(o.longS > 0 ? [o.longS] : [])]) await partition(`${s} s`, s * 1000);
    const long = await partition('24 h (simulated)', 20_000, day, 60_000);
    if (!long.converged) {
      const denied = Object.entries(long.state.logs).filter(([msg]) => /failed|dropped/.test(msg)).map(([msg, e]) => `${msg} ×${e.count}: ${e.last ?? ''}`);
      console.log(`    agents after the 24 h partition: ${denied.join(' | ')}`);
      // An operator re-issues the credentials, now valid 30 days; then the 24 h partition again.
      const longLived = new Enrolment({ store, clock, credentialTtlMs: 30 * day });
      t = now();
      for (const a of agents) toRemote({ t: 'credential', node: a.node, credential: (await longLived.renew(a.node)).credential });
      const healed = await until(() => agents.every((a) => (heardAt.get(a.node) ?? 0) > t), 60_000);
      console.log(`    credentials re-issued by hand (30 d): agents ${healed ? `back ${((now() - t) / 1000).toFixed(1)} s later` : 'still not back after 60 s'}`);
      await partition('24 h, 30 d credentials', 20_000, day, 60_000);
    }
    const final = await check();
    console.log(`  at the end: ${final.running} VMs running on the remote drivers, ${final.duplicates.length} on more than one agent`);
    console.log(`  agent log messages: ${Object.entries(final.logs).map(([m, e]) => `"${m}" ×${e.count}`).join(', ')}`);

    const stopped = once(fromRemote, 'exit');
    toRemote({ t: 'stop' });
    await stopped;
    stop.abort();
    await leases;
    await watching;
  } finally {
    stop.abort();
    if (child?.pid && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await server.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the outer process: namespaces and link, removed whatever happens ----

async function outer(o: Omit<SiteOptions, 'tag'>): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('Cannot run the WAN benchmark: it creates network namespaces and needs root');
  const tag = `cw${process.pid}`.slice(0, 11);
  const link = new WanLink(tag);
  let child: ChildProcess | undefined;
  const cleanup = async () => {
    if (child?.pid && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await link.destroy();
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().finally(() => process.exit(130)));
  try {
    await link.create();
    await link.loss(lossPercent);
    child = spawn('ip', ['netns', 'exec', link.server, process.execPath, '--import', 'tsx', self, 'site', JSON.stringify({ tag, ...o } satisfies SiteOptions)], { stdio: 'inherit' });
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'remote') await remote();
else if (mode === 'site') await site(JSON.parse(rest[0]!) as SiteOptions);
else await outer({ agents: Number(mode ?? 4), perAgent: Number(rest[0] ?? 60), longS: Number(rest[1] ?? 0), plain: rest[2] === 'plain' });
