/**
 * Networks end to end on the real kernel with real QEMU: two "hosts" are
 * network namespaces joined by a veth WAN; each runs an in-process agent whose
 * net layer and QEMU run inside its namespace, against an in-process server
 * with the scheduler and IPAM. Busybox guests get addresses by DHCP, ping each
 * other over VXLAN and out through the host's NAT, a firewall edit opens a TCP
 * port without a restart, WAN packet loss does not break the overlay, a
 * spoofed source address is dropped, a guest on another network cannot reach
 * them, and a host's network goes away with its last VM. Each host's
 * metadata service (run in a child process inside its namespace, fed by the
 * agent's passes) answers every guest with its own instance id only.
 * Everything is removed afterwards, also on failure.
 */
import { test } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import { missingRoot, missingTools } from '../../src/base/require-tool.ts';
import { ExecRunner } from '../../src/base/runner.ts';
import { Client } from '../../src/client/client.ts';
import { applyHostNetwork } from '../../src/net/host-network.ts';
import { NamespacedRunner } from '../../src/net/namespaced-runner.ts';
import { hostNetworkRoutes } from '../../src/server/ipam/host-network-view.ts';
import { IpamController } from '../../src/server/ipam/ipam-controller.ts';
import { Scheduler } from '../../src/server/scheduler/scheduler.ts';
import { buildTestApp, type TestApp } from '../../src/server/test-app.ts';
import type { Store } from '../../src/store/store.ts';
import { ensureBusyboxDisk } from '../guests/busybox-disk.ts';

const skip = missingRoot() ?? missingTools('ip', 'nft', 'dnsmasq', 'bridge', 'tc', 'sysctl', 'qemu-system-x86_64', 'qemu-img', 'mkfs.vfat', 'mcopy', 'syslinux', 'cpio');
const root = new ExecRunner();
const tag = `cne${process.pid}`;
const by = { author: 'e2e' };

/** Resolves once `check` holds; fails after `ms` (guests boot in 5–15 s under TCG on a busy host). */
async function waitFor(what: string, check: () => Promise<boolean> | boolean, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what}`);
    await delay(250);
  }
}

/** Kills the process a pid file names, only when its command line is what the test started. */
function killIf(pidFile: string, command: string): void {
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
  const cmdline = pid > 1 && existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
  if (cmdline.includes(command)) process.kill(pid, 'SIGKILL');
}

interface Host {
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
class Rig {
  readonly dir = mkdtempSync(join(tmpdir(), `${tag}-`));
  readonly namespaces: string[] = [];
  readonly hosts: Host[] = [];
  readonly stops: AbortController[] = [];
  readonly consoles: Duplex[] = [];
  readonly children: ChildProcess[] = [];
  t?: TestApp;

  async namespace(name: string): Promise<NamespacedRunner> {
    await root.run({ argv: ['ip', 'netns', 'add', name] });
    this.namespaces.push(name);
    const r = new NamespacedRunner(root, name);
    await r.run({ argv: ['ip', 'link', 'set', 'lo', 'up'] });
    return r;
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
    const service = new MetadataService({ identify: (conn) => guests.identify(conn) });
    const guests = new MetadataGuests({ place: { region: 'crowd', availabilityZone: ${JSON.stringify(node)} }, forget: (id) => service.forget(id), listen: () => service.listen([{ host: '169.254.169.254', port: 80 }]), logger: silentLogger() });
    let queue = Promise.resolve();
    process.on('message', (m) => { queue = queue.then(() => guests.update(m.vms, m.view, m.ready)); });
    process.on('disconnect', () => process.exit(0));`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    cwd: resolve(import.meta.dirname, '../..'),
  });
  rig.children.push(child);
  return {
    update: async (vms, view, ready) => {
      if (child.connected) child.send({ vms, view, ready });
    },
  };
}

/** A guest's serial console: commands in, and the whole log to match answers against. */
async function shell(rig: Rig, host: Host, vmId: string) {
  const console = await host.driver.attachConsole(vmId);
  rig.consoles.push(console);
  console.on('data', () => undefined);
  let n = 0;
  return {
    /** Runs a shell command in the guest and resolves with what it printed between two markers. */
    async run(command: string, ms = 60_000): Promise<string> {
      const id = `${++n}-${Math.random().toString(36).slice(2, 8)}`;
      const re = new RegExp(`BEGIN-${id}\\r?\\n([\\s\\S]*?)END-${id}`);
      console.write(`echo BEGIN-${id}; ${command}; echo END-${id}\n`);
      let out = '';
      await waitFor(`"${command}" in the guest`, async () => {
        const m = re.exec(await host.driver.consoleLog(vmId));
        out = m?.[1] ?? '';
        return m !== null;
      }, ms);
      return out;
    },
  };
}

test('guests on two hosts share a network over VXLAN with DHCP, firewalls and isolation', { skip, timeout: 300_000 }, async () => {
  const rig = new Rig();
  try {
    const disk = await ensureBusyboxDisk();
    chmodSync(rig.dir, 0o755);
    // The WAN: a veth between the two host namespaces.
    const [a, b] = [await rig.namespace(`${tag}a`), await rig.namespace(`${tag}b`)];
    await a.run({ argv: ['ip', 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'wan', 'netns', `${tag}b`] });
    for (const [h, ip] of [[a, '192.0.2.1/24'], [b, '192.0.2.2/24']] as const) {
      await h.run({ argv: ['ip', 'addr', 'add', ip, 'dev', 'wan'] });
      await h.run({ argv: ['ip', 'link', 'set', 'wan', 'up'] });
    }

    // The server: store, API, scheduler and IPAM, in process on loopback.
    const t: TestApp = (rig.t = await buildTestApp({ nodes: true, plugins: [hostNetworkRoutes((): Store => t.store)] }));
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    const control = new AbortController();
    rig.stops.push(control);
    void new Scheduler({ store: t.store, logger: silentLogger(), clock: systemClock }).run(control.signal);
    void new IpamController({ store: t.store, logger: silentLogger(), clock: systemClock }).run(control.signal);
    await t.store.create({ kind: 'machine-type', name: 'tiny', spec: { cpus: 1, memoryMiB: 192, diskGiB: 1 } }, by);
    await t.store.create({ kind: 'image', name: 'busybox', spec: { arch: 'x86_64' } }, by);
    await t.store.create({ kind: 'firewall', name: 'fw', spec: { rules: [{ direction: 'ingress', action: 'accept', protocol: 'icmp' }] } }, by);
    await t.store.create({ kind: 'network', name: 'blue', spec: { ipv4: { subnet: '10.77.0.0/24' }, firewalls: ['fw'] } }, by);
    await t.store.create({ kind: 'network', name: 'red', spec: { ipv4: { subnet: '10.78.0.0/24' }, firewalls: ['fw'] } }, by);

    // Two agents, each with its QEMU and net layer inside its namespace.
    for (const [name, ns, runner, underlayIp] of [['ha', `${tag}a`, a, '192.0.2.1'], ['hb', `${tag}b`, b, '192.0.2.2']] as const) {
      const { token } = await t.enrolment!.createJoinToken({}, 'e2e');
      const enrol = await t.app.inject({ method: 'POST', url: '/v1/nodes/enrol', payload: { joinToken: token, name, arch: 'x86_64', capacity: { cpus: 2, memoryMiB: 2048, diskGiB: 20 }, accel: 'tcg' } });
      assert.equal(enrol.statusCode, 201, enrol.body);
      const credential = enrol.json<NodeCredential>().credential;
      const client = () => new Client({ baseUrl: url, authorization: `Bearer ${credential}` });
      const qemu = join(rig.dir, `qemu-${name}`);
      writeFileSync(qemu, `#!/bin/sh\nexec ip netns exec ${ns} qemu-system-x86_64 "$@"\n`, { mode: 0o755 });
      const dnsmasqDir = join(rig.dir, `dnsmasq-${name}`);
      const driver = new QemuDriver({ runDir: join(rig.dir, `vms-${name}`), qemuBinary: qemu });
      const network = new HostNetworkSync({
        options: { underlayIp, dnsmasqRunDir: dnsmasqDir },
        fetchView: () => client().http.json({ method: 'GET', path: `/v1/nodes/${name}/network` }),
        apply: (spec) => applyHostNetwork(spec, { runner }),
        clock: systemClock,
        logger: silentLogger(),
        refreshMs: 1000,
      });
      const cache = new AgentCache(join(rig.dir, `cache-${name}.db`));
      const agent = new Agent({
        node: name,
        client,
        driver,
        cache,
        clock: systemClock,
        logger: silentLogger(),
        host: { accel: 'tcg', imagePath: () => ({ path: disk, format: 'qcow2' }) },
        network,
        metadata: metadataIn(rig, ns, name),
        tickMs: 1000,
        heartbeatMs: 1000,
      });
      const stop = new AbortController();
      rig.hosts.push({ name, ns, runner, driver, cache, dnsmasqDir, stop, running: agent.run(stop.signal) });
    }
    const [ha, hb] = rig.hosts as [Host, Host];

    const createVm = (name: string, node: string, network: string) =>
      t.store.create({ kind: 'vm', name, spec: { image: 'busybox', machineType: 'tiny', nics: [{ network }], placement: { node } } }, by);
    const running = async (name: string) => {
      let vm = await t.store.get({ kind: 'vm', project: 'default', idOrName: name });
      // Until its host network is ready the VM waits (provisioning).
      await waitFor(`vm "${name}" to run`, async () => {
        vm = await t.store.get({ kind: 'vm', project: 'default', idOrName: name });
        return (vm.status as VmStatus).phase === 'running';
      }).catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify(vm.status)}`);
      });
      return { id: vm.id, ip: (vm.status as VmStatus).addresses![0]!.ipv4! };
    };
    const dhcp = (host: Host, id: string, ip: string) =>
      waitFor(`DHCP for ${ip} and a shell`, async () => {
        const log = await host.driver.consoleLog(id);
        return log.includes(`CROWD-GUEST-DHCP: eth0 ${ip}/24`) && log.includes('CROWD-GUEST-READY');
      }).catch(async (e: Error) => {
        throw new Error(`${e.message}; console: ${(await host.driver.consoleLog(id)).slice(-600)}`);
      });

    await createVm('g1', 'ha', 'blue');
    await createVm('g2', 'hb', 'blue');
    const g1 = await running('g1');
    const g2 = await running('g2');
    assert.match(g1.ip, /^10\.77\.0\.\d+$/);
    assert.notEqual(g1.ip, g2.ip);
    // Each guest got exactly the address the server assigned, from its own host's dnsmasq.
    await dhcp(ha, g1.id, g1.ip);
    await dhcp(hb, g2.id, g2.ip);
    const s1 = await shell(rig, ha, g1.id);
    const s2 = await shell(rig, hb, g2.id);

    // Each guest's metadata comes from its own host's service, identified by its assigned address: its own, never the other's.
    const imds = (path: string) => `echo "MD:$(timeout 10 wget -q -O - http://169.254.169.254${path})"`;
    for (const [s, own, other, name] of [[s1, g1, g2, 'g1'], [s2, g2, g1, 'g2']] as const) {
      const id = await s.run(imds('/latest/meta-data/instance-id'));
      assert.match(id, new RegExp(`MD:${own.id}\\r?\\n`));
      assert.doesNotMatch(id, new RegExp(other.id));
      const doc = await s.run(imds('/openstack/latest/meta_data.json'));
      assert.match(doc, new RegExp(`"name": ?"${name}"`));
      assert.doesNotMatch(doc, new RegExp(other.id));
    }

    // Across hosts over VXLAN (the firewall accepts ICMP).
    assert.match(await s1.run(`ping -c 2 -W 3 ${g2.ip} >/dev/null && echo PING-OK || echo PING-FAIL`), /PING-OK/);
    // gateway: host — host a routes and masquerades the segment to an address outside it (host b's WAN side).
    assert.match(await s1.run('ping -c 2 -W 3 192.0.2.2 >/dev/null && echo NAT-OK || echo NAT-FAIL'), /NAT-OK/);

    // TCP 8080 is closed by default (deny ingress), then opened by a firewall edit — no VM restarts.
    await s2.run('(while true; do echo hello | nc -l -p 8080; done) >/dev/null 2>&1 & true');
    const connect = `echo "TCP:$(nc -w 3 ${g2.ip} 8080 </dev/null)"`;
    assert.match(await s1.run(connect), /TCP:\r?\n/);
    const fw = await t.store.get({ kind: 'firewall', project: 'default', idOrName: 'fw' });
    await t.store.update({ kind: 'firewall', project: 'default', idOrName: 'fw' }, {
      labels: {}, metadata: {},
      spec: { rules: [...(fw.spec as { rules: unknown[] }).rules, { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['8080'] }] },
    }, by);
    await waitFor('the new rule on host b', async () => (await b.run({ argv: ['nft', 'list', 'table', 'inet', 'crowd'] })).stdout.includes('8080'));
    assert.match(await s1.run(connect), /TCP:hello/);
    const before = (await hb.driver.list()).find((v) => v.id === g2.id);
    assert.equal(before?.state, 'running');

    // 20% packet loss on host b's WAN (nftables: this kernel has no netem) does not break the overlay.
    const loss = 'table netdev cnloss {\n chain c {\n  type filter hook ingress device "wan" priority 0; policy accept;\n  numgen random mod 100 < 20 drop\n }\n}\n';
    await b.run({ argv: ['nft', '-f', '-'], input: loss });
    assert.match(await s1.run(`echo "TCP:$(nc -w 15 ${g2.ip} 8080 </dev/null)"`), /TCP:hello/);
    await b.run({ argv: ['nft', 'delete', 'table', 'netdev', 'cnloss'] });

    // A guest sending from an address the server did not assign is dropped at its tap.
    assert.match(await s1.run(`ip addr add 10.77.0.200/24 dev eth0; ping -I 10.77.0.200 -c 2 -W 2 ${g2.ip} >/dev/null && echo SPOOF-OK || echo SPOOF-FAIL; ip addr del 10.77.0.200/24 dev eth0`), /SPOOF-FAIL/);
    assert.match(await s1.run(`ping -c 1 -W 3 ${g2.ip} >/dev/null && echo PING-OK || echo PING-FAIL`), /PING-OK/);

    // The last VM of "blue" leaving host b removes the network there; g1 keeps running on host a.
    await t.store.delete({ kind: 'vm', project: 'default', idOrName: 'g2' }, by);
    await waitFor('host b to drop the network', async () => !(await b.run({ argv: ['ip', '-o', 'link', 'show'] })).stdout.includes('crowd:bridge:'));

    // A guest on another network reaches its own gateway but not the guest on "blue".
    await createVm('g3', 'ha', 'red');
    const g3 = await running('g3');
    await dhcp(ha, g3.id, g3.ip);
    const s3 = await shell(rig, ha, g3.id);
    assert.match(await s3.run('ping -c 1 -W 3 10.78.0.1 >/dev/null && echo GW-OK || echo GW-FAIL'), /GW-OK/);
    // Host a's service tells g3 from g1 (same service, other network).
    assert.match(await s3.run(imds('/latest/meta-data/instance-id')), new RegExp(`MD:${g3.id}\\r?\\n`));
    assert.match(await s1.run(imds('/latest/meta-data/instance-id')), new RegExp(`MD:${g1.id}\\r?\\n`));
    assert.match(await s3.run(`ping -c 2 -W 2 ${g1.ip} >/dev/null && echo CROSS-OK || echo CROSS-FAIL`), /CROSS-FAIL/);
  } finally {
    await rig.teardown();
  }
  for (const n of rig.namespaces) assert.equal(existsSync(`/run/netns/${n}`), false, `namespace ${n} is gone`);
});
