/**
 * Agent benchmark (DESIGN.md §10), printing figures:
 *
 *   latency [rounds]          real QEMU (TCG): N rounds of 8 VMs created at once through the API;
 *                             API accept → QEMU exec'd, split into scheduler / agent / driver, vs QEMU's own boot
 *   scale [agents] [vms]      fake driver: simulated agents × VMs each in one process against one server;
 *                             time to converge after creation and after a server restart, peak request rate
 *
 * Usage: node --import tsx bench/agent.bench.ts [latency [rounds]] | [scale [agents] [vms]]   (default: both, 3 rounds, 1000 × 50)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent } from '../src/agent/agent.ts';
import { AgentCache } from '../src/agent/agent-cache.ts';
import { FakeDriver } from '../src/agent/drivers/fake-driver.ts';
import { QemuDriver } from '../src/agent/drivers/qemu/qemu-driver.ts';
import { isVmProcess, pidFileTime, readPid, spawnDetached } from '../src/agent/drivers/qemu/qemu-process.ts';
import type { VmConfig, VmInfo } from '../src/agent/drivers/driver.ts';
import { systemClock } from '../src/base/clock.ts';
import { silentLogger } from '../src/base/logger.ts';
import { Client } from '../src/client/client.ts';
import { ensureBusyboxDisk, guestMarkers } from '../test/guests/busybox-disk.ts';
import { adminToken, BenchServer, by, countWhile, now, readyImage } from './bench-server.ts';
import { ms, summarize } from './stats.ts';

// ---- (a) API accept → QEMU exec'd, real QEMU --------------------------------

/** A process's start in clock ticks (10 ms) after boot, from /proc/<pid>/stat. */
function startTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

/**
 * When a process began (fork + exec), 10 ms resolution: its start ticks
 * against those of a process this bench spawns at a known time (boot time
 * from /proc/stat is whole seconds, too coarse to add to the ticks).
 */
function processStartClock(): (pid: number) => number {
  const before = now();
  const probe = spawnSync('sh', ['-c', 'cat /proc/$$/stat'], { encoding: 'utf8' });
  const after = now();
  const ticks = Number(probe.stdout.slice(probe.stdout.lastIndexOf(')') + 2).split(' ')[19]);
  const at = (before + after) / 2;
  return (pid) => at + (startTicks(pid) - ticks) * 10;
}

interface Sample {
  accepted?: number;
  /** QEMU wrote its pid file: its own initialisation is done. */
  pidFile?: number;
  bound?: number;
  startCalled?: number;
  exec?: number;
  startReturned?: number;
  marker?: number;
}

async function latency(rounds: number): Promise<void> {
  const dir = mkdtempSync('/tmp/crowd-bench-agent-');
  const server = new BenchServer(join(dir, 'crowd.db'));
  const samples = new Map<string, Sample>();
  const sample = (id: string) => samples.get(id) ?? (samples.set(id, {}), samples.get(id)!);
  const runDir = join(dir, 'vms');
  /** The real QEMU driver with a stopwatch around start. */
  class TimedQemuDriver extends QemuDriver {
    override async start(config: VmConfig): Promise<VmInfo> {
      sample(config.id).startCalled = now();
      const info = await super.start(config);
      sample(config.id).startReturned = now();
      return info;
    }
  }
  const driver = new TimedQemuDriver({ runDir });
  const processStart = processStartClock();
  const ac = new AbortController();
  const cache = new AgentCache(join(dir, 'cache.db'));
  try {
    const base = await ensureBusyboxDisk();
    await server.start();
    await server.store.create({ kind: 'machine-type', name: 'tiny', spec: { cpus: 1, memoryMiB: 128, diskGiB: 1 } }, by);
    await readyImage(server.store, 'busybox');
    const credential = await server.enrol('bench-host', 16, 16384);
    const agent = new Agent({
      node: 'bench-host',
      client: () => new Client({ baseUrl: server.url, authorization: `Bearer ${credential}` }),
      driver,
      cache,
      clock: systemClock,
      logger: silentLogger(),
      host: { accel: 'tcg', imagePath: () => ({ path: base, format: 'qcow2' }) },
    });
    const running = agent.run(ac.signal);
    const admin = new Client({ baseUrl: server.url, authorization: `Bearer ${adminToken}` });
    for (let r = 0; r < rounds; r++) {
      const names = Array.from({ length: 8 }, (_, i) => `r${r}-vm${i}`);
      const bound = countWhile(server.store, (v) => v.status.node === 'bench-host', (n) => n === 8, (v) => (sample(v.id).bound ??= now()));
      const ids = await Promise.all(
        names.map(async (name) => {
          const vm = await admin.vms.create({ name, spec: { image: 'busybox', machineType: 'tiny' } } as never);
          sample(vm.id).accepted = now();
          return vm.id;
        }),
      );
      await bound;
      const deadline = Date.now() + 180_000;
      for (const id of ids) {
        const s = sample(id);
        const console = join(runDir, id, 'console.log');
        while (s.marker === undefined && Date.now() < deadline) {
          if (existsSync(console) && readFileSync(console, 'utf8').includes(guestMarkers.ready)) s.marker = now();
          else await delay(20);
        }
        s.exec = processStart((await readPid(join(runDir, id, 'qemu.pid')))!);
        s.pidFile = await pidFileTime(join(runDir, id, 'qemu.pid'));
      }
      await Promise.all(names.map((n) => admin.vms.delete(n)));
      for (const id of ids) while (existsSync(join(runDir, id))) await delay(20);
      console.log(`  round ${r + 1}/${rounds}: 8 VMs booted and deleted`);
    }
    const solo = await soloVsBareQemu(admin, runDir, join(dir, 'bare'), rounds);
    ac.abort();
    await running;
    const all = [...samples.values()].filter((s) => s.accepted && s.exec && s.pidFile && s.marker && s.startCalled && s.startReturned && s.bound);
    const line = (what: string, xs: number[]) => {
      const s = summarize(xs);
      console.log(`  ${what.padEnd(44)} p50 ${ms(s.p50).padStart(9)}  p99 ${ms(s.p99).padStart(9)}  max ${ms(s.max).padStart(9)}`);
    };
    console.log(`latency: ${all.length} VMs (${rounds} rounds of 8 created at once), TCG, 1 vCPU, 128 MiB`);
    line('API accept -> QEMU exec\'d (agent overhead)', all.map((s) => s.exec! - s.accepted!));
    line('  accept -> bound by the scheduler', all.map((s) => s.bound! - s.accepted!));
    line('  bound -> agent calls driver.start', all.map((s) => s.startCalled! - s.bound!));
    line('  driver.start -> QEMU exec\'d (disk overlay)', all.map((s) => s.exec! - s.startCalled!));
    line('QEMU exec\'d -> its pid file (QEMU\'s own init)', all.map((s) => s.pidFile! - s.exec!));
    line('QEMU exec\'d -> answers QMP (start returns)', all.map((s) => s.startReturned! - s.exec!));
    line('QEMU exec\'d -> guest READY marker (boot)', all.map((s) => s.marker! - s.exec!));
    console.log(`whole create vs bare QEMU, one VM at a time, ${rounds} runs each (target: at most +100 ms)`);
    line('API create -> guest READY marker', solo.api);
    line('bare QEMU, same argv, spawn -> READY marker', solo.bare);
    console.log(`  difference of the medians: ${ms(summarize(solo.api).p50 - summarize(solo.bare).p50)}`);
  } finally {
    ac.abort();
    for (const id of samples.keys()) {
      const pidFile = join(runDir, id, 'qemu.pid');
      const pid = await readPid(pidFile);
      if (pid && (await isVmProcess(pid, pidFile))) process.kill(pid, 'SIGKILL');
    }
    await driver.close();
    cache.close();
    await server.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits for the guest's READY marker in a console log; the time it appeared. */
async function readyAt(consoleLog: string, deadline: number): Promise<number> {
  while (Date.now() < deadline) {
    if (existsSync(consoleLog) && readFileSync(consoleLog, 'utf8').includes(guestMarkers.ready)) return now();
    await delay(10);
  }
  throw new Error(`no ${guestMarkers.ready} in ${consoleLog}`);
}

/**
 * One VM at a time: API create → guest READY, then QEMU started by hand with
 * the very argv the agent used (read from /proc, paths moved to another dir,
 * its overlay made beforehand) → READY. The difference is crowdcloud's whole cost.
 */
async function soloVsBareQemu(admin: Client, runDir: string, bareDir: string, runs: number): Promise<{ api: number[]; bare: number[] }> {
  const api: number[] = [];
  const bare: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = now();
    const vm = await admin.vms.create({ name: `solo-${r}`, spec: { image: 'busybox', machineType: 'tiny' } } as never);
    const vmDir = join(runDir, vm.id);
    api.push((await readyAt(join(vmDir, 'console.log'), Date.now() + 120_000)) - t0);
    const pid = await readPid(join(vmDir, 'qemu.pid'));
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
    await admin.vms.delete(vm.id);
    while (existsSync(vmDir)) await delay(20);
    const dir = join(bareDir, String(r));
    mkdirSync(dir, { recursive: true });
    const moved = argv.slice(1).map((a) => a.replaceAll(vmDir, dir));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', await ensureBusyboxDisk(), join(dir, 'boot.qcow2'), '1G']);
    const t1 = now();
    const child = spawnDetached(argv[0]!, moved, join(dir, 'qemu.log'));
    try {
      bare.push((await readyAt(join(dir, 'console.log'), Date.now() + 120_000)) - t1);
    } finally {
      if (child.pid) process.kill(child.pid, 'SIGKILL');
    }
  }
  return { api, bare };
}

// ---- (b) simulated agents with the fake driver -------------------------------

async function scale(agents: number, perAgent: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-bench-scale-'));
  const server = new BenchServer(join(dir, 'crowd.db'));
  // One signal per agent, as on real hosts: thousands of listeners on one signal would make the simulation slow, not the agent.
  const stops: AbortController[] = [];
  const runs: Promise<void>[] = [];
  const caches: AgentCache[] = [];
  const total = agents * perAgent;
  try {
    await server.start();
    const port = Number(new URL(server.url).port);
    await server.store.create({ kind: 'machine-type', name: 'tiny', spec: { cpus: 1, memoryMiB: 128, diskGiB: 1 } }, by);
    await readyImage(server.store, 'busybox');
    let t = now();
    for (let i = 0; i < agents; i++) {
      const node = `sim-${i}`;
      const credential = await server.enrol(node, perAgent, perAgent * 128);
      const cache = new AgentCache(':memory:');
      caches.push(cache);
      const agent = new Agent({
        node,
        client: () => new Client({ baseUrl: server.url, authorization: `Bearer ${credential}` }),
        driver: new FakeDriver(),
        cache,
        clock: systemClock,
        logger: silentLogger(),
        host: { accel: 'tcg', imagePath: () => ({ path: '/fake/busybox.qcow2', format: 'qcow2' }) },
      });
      const ac = new AbortController();
      stops.push(ac);
      runs.push(agent.run(ac.signal));
    }
    while (server.watchRequests < agents) await delay(50);
    console.log(`scale: ${agents} agents × ${perAgent} VMs = ${total} VMs (fake driver, one process, one server over HTTP, SQLite on disk)`);
    console.log(`  ${agents} agents enrolled and watching in ${((now() - t) / 1000).toFixed(1)} s`);

    t = now();
    let created = 0;
    const converged = countWhile(server.store, (v) => v.status.phase === 'running', (n) => n === total);
    const bound = countWhile(server.store, (v) => v.status.node !== undefined, (n) => n === total).then(() => now() - t);
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (created < total) {
          const i = created++;
          await server.store.create({ kind: 'vm', name: `vm-${i}`, spec: { image: 'busybox', machineType: 'tiny' } }, by);
        }
      }),
    );
    const createdIn = now() - t;
    await converged;
    const convergedIn = now() - t;
    console.log(`  created ${total} VMs in ${(createdIn / 1000).toFixed(1)} s; all running (scheduled, started, reported) ${(convergedIn / 1000).toFixed(1)} s after the first create`);
    console.log(`  all bound by the scheduler ${((await bound) / 1000).toFixed(1)} s after the first create`);
    console.log(`  creates/s per agent (created → reported running): ${(total / agents / (convergedIn / 1000)).toFixed(0)} (target ≥ 500 with the fake driver)`);
    console.log(`  peak request rate while converging: ${server.peakPerSecond(t)}/s`);

    const downMs = 5000;
    await server.stop();
    await delay(downMs);
    await server.start(port);
    const back = now();
    const watchesBefore = server.watchRequests;
    const reconnected = (async () => {
      while (server.watchRequests - watchesBefore < agents) await delay(20);
      return now() - back;
    })();
    // As many VMs as agents are stopped right after the restart; convergence is every one of them reported stopped.
    const stopped = countWhile(server.store, (v) => v.status.phase === 'stopped', (n) => n === agents);
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        // VMs are placed spread out, so the first `agents` VMs land on nearly as many agents.
        for (let i = next++; i < agents; i = next++) {
          const vm = await server.store.get({ kind: 'vm', idOrName: `vm-${i}` });
          await server.store.update({ kind: 'vm', idOrName: vm.id }, { labels: {}, metadata: {}, spec: { ...vm.spec, power: 'stopped' } }, by);
        }
      }),
    );
    await stopped;
    const convergedAfter = now() - back;
    console.log(`  server restart after ${downMs / 1000} s down: all ${agents} agents watching again after ${((await reconnected) / 1000).toFixed(1)} s; ${agents} power changes made at the restart all reported stopped after ${(convergedAfter / 1000).toFixed(1)} s`);
    console.log(`  peak request rate after the restart: ${server.peakPerSecond(back)}/s (${agents} agents, full-jitter backoff capped at 8 s)`);
  } finally {
    for (const ac of stops) ac.abort();
    await Promise.all(runs);
    for (const c of caches) c.close();
    await server.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

const [mode, a, b] = process.argv.slice(2);
if (mode === undefined || mode === 'latency') await latency(Number(a ?? 3));
if (mode === undefined || mode === 'scale') await scale(Number((mode ? a : undefined) ?? 1000), Number((mode ? b : undefined) ?? 50));
