/**
 * Shared rig for end-to-end tests whose "hosts" are network namespaces: each
 * host runs an in-process agent whose net layer and QEMU run inside its
 * namespace, with the agent's metadata service in a child process there.
 * Everything started is torn down in reverse, also after a partial setup.
 */
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import type { NodeCredential } from '../../src/api/enrolment.ts';
import type { VmStatus } from '../../src/api/kinds/vm.ts';
import { Agent } from '../../src/agent/agent.ts';
import { AgentCache } from '../../src/agent/agent-cache.ts';
import { QemuDriver } from '../../src/agent/drivers/qemu/qemu-driver.ts';
import { HostNetworkSync } from '../../src/agent/host-network-sync.ts';
import { systemClock } from '../../src/base/clock.ts';
import { silentLogger } from '../../src/base/logger.ts';
import { ExecRunner } from '../../src/base/runner.ts';
import { Client } from '../../src/client/client.ts';
import { applyHostNetwork } from '../../src/net/host-network.ts';
import { NamespacedRunner } from '../../src/net/namespaced-runner.ts';
import { hostNetworkRoutes } from '../../src/server/ipam/host-network-view.ts';
import { IpamController } from '../../src/server/ipam/ipam-controller.ts';
import { Scheduler } from '../../src/server/scheduler/scheduler.ts';
import { buildTestApp, type TestApp } from '../../src/server/test-app.ts';
import type { Store } from '../../src/store/store.ts';

/** Runs commands in the test's own (root) namespace. */
export const root = new ExecRunner();

/** Resolves once `check` holds; fails after `ms` (guests boot in 5–15 s under TCG on a busy host). */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what}`);
    await delay(250);
  }
}

/** Waits until a VM runs, and returns its id and first IPv4 address. */
export async function vmRunning(t: TestApp, name: string): Promise<{ id: string; ip: string }> {
  let vm = await t.store.get({ kind: 'vm', project: 'default', idOrName: name });
  // Until its host network is ready the VM waits (provisioning).
  await waitFor(`vm "${name}" to run`, async () => {
    vm = await t.store.get({ kind: 'vm', project: 'default', idOrName: name });
    return (vm.status as VmStatus).phase === 'running';
  }).catch((e: Error) => {
    throw new Error(`${e.message}: ${JSON.stringify(vm.status)}`);
  });
  return { id: vm.id, ip: (vm.status as VmStatus).addresses![0]!.ipv4! };
}

/** Kills the process a pid file names, only when its command line is what the test started. */
function killIf(pidFile: string, command: string): void {
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
  const cmdline = pid > 1 && existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
  if (cmdline.includes(command)) process.kill(pid, 'SIGKILL');
}

/** One namespaced host with its agent. */
export interface Host {
  name: string;
  ns: string;
  runner: NamespacedRunner;
  driver: QemuDriver;
  cache: AgentCache;
  dnsmasqDir: string;
  stop: AbortController;
  running: Promise<void>;
}

/** Everything the test starts, torn down in reverse, tolerating partial setups. */
export class Rig {
  readonly dir: string;
  readonly namespaces: string[] = [];
  readonly hosts: Host[] = [];
  readonly stops: AbortController[] = [];
  readonly consoles: Duplex[] = [];
  readonly children: ChildProcess[] = [];
  t?: TestApp;
  url = '';

  constructor(readonly tag: string) {
    this.dir = mkdtempSync(join(tmpdir(), `${tag}-`));
  }

  async namespace(name: string): Promise<NamespacedRunner> {
    await root.run({ argv: ['ip', 'netns', 'add', name] });
    this.namespaces.push(name);
    const r = new NamespacedRunner(root, name);
    await r.run({ argv: ['ip', 'link', 'set', 'lo', 'up'] });
    return r;
  }

  /** The server: store, API, scheduler and IPAM, in process on loopback. */
  async server(): Promise<TestApp> {
    const t: TestApp = (this.t = await buildTestApp({ nodes: true, plugins: [hostNetworkRoutes((): Store => t.store)] }));
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    this.url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const control = new AbortController();
    this.stops.push(control);
    void new Scheduler({ store: t.store, logger: silentLogger(), clock: systemClock }).run(control.signal);
    void new IpamController({ store: t.store, logger: silentLogger(), clock: systemClock }).run(control.signal);
    return t;
  }

  /** Enrols a node and runs its agent with QEMU and the net layer inside namespace `ns`, booting `disk` for every image. */
  async host(o: { name: string; ns: string; runner: NamespacedRunner; underlayIp: string; disk: string; capacity?: { cpus: number; memoryMiB: number; diskGiB: number } }): Promise<Host> {
    const t = this.t!;
    const { token } = await t.enrolment!.createJoinToken({}, 'e2e');
    const capacity = o.capacity ?? { cpus: 2, memoryMiB: 2048, diskGiB: 20 };
    const enrol = await t.app.inject({ method: 'POST', url: '/v1/nodes/enrol', payload: { joinToken: token, name: o.name, arch: 'x86_64', capacity, accel: 'tcg' } });
    assert.equal(enrol.statusCode, 201, enrol.body);
    const credential = enrol.json<NodeCredential>().credential;
    const client = () => new Client({ baseUrl: this.url, authorization: `Bearer ${credential}` });
    const qemu = join(this.dir, `qemu-${o.name}`);
    writeFileSync(qemu, `#!/bin/sh\nexec ip netns exec ${o.ns} qemu-system-x86_64 "$@"\n`, { mode: 0o755 });
    const dnsmasqDir = join(this.dir, `dnsmasq-${o.name}`);
    const driver = new QemuDriver({ runDir: join(this.dir, `vms-${o.name}`), qemuBinary: qemu });
    const network = new HostNetworkSync({
      options: { underlayIp: o.underlayIp, dnsmasqRunDir: dnsmasqDir },
      fetchView: () => client().http.json({ method: 'GET', path: `/v1/nodes/${o.name}/network` }),
      apply: (spec) => applyHostNetwork(spec, { runner: o.runner }),
      clock: systemClock,
      logger: silentLogger(),
      refreshMs: 1000,
    });
    const cache = new AgentCache(join(this.dir, `cache-${o.name}.db`));
    const agent = new Agent({
      node: o.name,
      client,
      driver,
      cache,
      clock: systemClock,
      logger: silentLogger(),
      host: { accel: 'tcg', imagePath: () => ({ path: o.disk, format: 'qcow2' }) },
      network,
      metadata: metadataIn(this, o.ns, o.name),
      tickMs: 1000,
      heartbeatMs: 1000,
    });
    const stop = new AbortController();
    const host: Host = { name: o.name, ns: o.ns, runner: o.runner, driver, cache, dnsmasqDir, stop, running: agent.run(stop.signal) };
    this.hosts.push(host);
    return host;
  }

  async teardown(): Promise<void> {
    for (const c of this.consoles) c.destroy();
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const s of this.stops) s.abort();
    for (const h of this.hosts) {
      h.stop.abort();
      await h.running.catch(() => undefined);
      for (const vm of await h.driver.list().catch(() => [])) await h.driver.destroy(vm.id).catch(() => undefined);
      await h.driver.close().catch(() => undefined);
      h.cache.close();
      // A QEMU the driver could not destroy is killed by the pid it wrote.
      const vmsDir = join(this.dir, `vms-${h.name}`);
      for (const id of existsSync(vmsDir) ? readdirSync(vmsDir) : []) killIf(join(vmsDir, id, 'qemu.pid'), 'qemu-system');
      // Stops this host's dnsmasq instances (a namespace's deletion would not) and removes its links.
      await applyHostNetwork({ links: [], ruleset: { networks: [], nics: [] }, bandwidth: [], dnsmasq: [], dnsmasqRunDir: h.dnsmasqDir }, { runner: h.runner }).catch(() => undefined);
      for (const f of (existsSync(h.dnsmasqDir) ? readdirSync(h.dnsmasqDir) : []).filter((x) => x.endsWith('.pid'))) killIf(join(h.dnsmasqDir, f), 'dnsmasq');
    }
    await this.t?.close().catch(() => undefined);
    for (const n of this.namespaces.reverse()) await root.run({ argv: ['ip', 'netns', 'del', n] }).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const src = (path: string) => JSON.stringify(resolve(import.meta.dirname, '../../src', path));

/**
 * The agent's metadata guests and service in a child process inside the host's
 * namespace (the in-process agent cannot bind there); the agent's passes reach
 * it over IPC, so what it serves comes from the same VM objects and view.
 */
function metadataIn(rig: Rig, ns: string, node: string): { update(vms: unknown, view: unknown, ready: boolean): Promise<void> } {
  const script = `
    const { MetadataService } = await import(${src('metadata/metadata-service.ts')});
    const { MetadataGuests } = await import(${src('agent/metadata-guests.ts')});
    const { silentLogger } = await import(${src('base/logger.ts')});
    const { SecretStore } = await import(${src('agent/secret-store.ts')});
    const service = new MetadataService({ identify: (conn) => guests.identify(conn) });
    const guests = new MetadataGuests({ place: { region: 'crowd', availabilityZone: ${JSON.stringify(node)} }, forget: (id) => service.forget(id), listen: () => service.listen([{ host: '169.254.169.254', port: 80 }]), logger: silentLogger(), secrets: new SecretStore() });
    let queue = Promise.resolve();
    process.on('message', (m) => { queue = queue.then(() => guests.update(m.vms, m.view, m.ready)).catch((e) => console.error('metadata update failed:', e)).then(() => process.send({ done: m.seq })); });
    process.on('disconnect', () => process.exit(0));`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    cwd: resolve(import.meta.dirname, '../..'),
  });
  rig.children.push(child);
  // Like the agent's own await, an update returns once the service took it (and is listening when ready), so VMs never start before it.
  let seq = 0;
  const done = new Map<number, () => void>();
  child.on('message', (m: { done: number }) => done.get(m.done)?.());
  return {
    update: async (vms, view, ready) => {
      if (!child.connected) return;
      const n = ++seq;
      const acked = new Promise<void>((r) => done.set(n, r));
      child.send({ vms, view, ready, seq: n });
      await Promise.race([acked, once(child, 'exit')]);
      done.delete(n);
    },
  };
}
