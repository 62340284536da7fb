/**
 * A site on one machine for end-to-end tests: a "control" network namespace
 * holds the WAN bridge and a real `crowd server` (TLS, self-signed), and each
 * "host" is a namespace on that WAN running a real `crowd agent` process,
 * enrolled with a join token that pins the server's certificate. The agents
 * do everything themselves: bridges, VXLAN, nftables, dnsmasq, QEMU and their
 * metadata service. The test drives the site through the `crowd` CLI (run in
 * the control namespace) and watches it with the HTTP client over a unix
 * socket bridged into that namespace. Everything started is torn down, also
 * after a partial setup: processes by pid or by the pid files in the rig's dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Agent, fetch as undiciFetch } from 'undici';
import type { AnyObject } from '../../src/api/object.ts';
import { isVmProcess, readPid } from '../../src/agent/drivers/qemu/qemu-process.ts';
import { ExecRunner } from '../../src/base/runner.ts';
import { Client } from '../../src/client/client.ts';
import { NamespacedRunner } from '../../src/net/namespaced-runner.ts';
import { crowd, killLeftoverQemus, objectWhen, seedAdminToken, startAgent, startServer, until, type CrowdProcess } from './crowd-processes.ts';

/** Runs commands in the test's own (root) namespace. */
const root = new ExecRunner();

/** The WAN: 192.0.2.0/24 (TEST-NET-1); hosts get .1, .2, …; the server listens on .254. */
const wan = (n: number) => `192.0.2.${n}`;
const serverPort = 7470;

/** One namespaced host and its `crowd agent` process. */
export interface ClusterHost {
  name: string;
  ns: string;
  /** Commands inside the host's namespace. */
  runner: NamespacedRunner;
  underlayIp: string;
  /** The agent's data dir: identity, cache and `vms/<id>/` (QEMU's pid file, console socket and log). */
  dataDir: string;
  /** The agent's runtime dir (dnsmasq's files and pid files). */
  runDir: string;
  agent: CrowdProcess;
}

/** Kills the process a pid file names, only when its command line is what the test started. */
function killIf(pidFile: string, command: string): void {
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
  const cmdline = pid > 1 && existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
  if (cmdline.includes(command)) process.kill(pid, 'SIGKILL');
}

/** The server, the WAN and the hosts; `teardown` removes all of it. */
export class NetnsCluster {
  readonly dir: string;
  readonly namespaces: string[] = [];
  readonly hosts: ClusterHost[] = [];
  private readonly procs: CrowdProcess[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly consoles: Duplex[] = [];
  private readonly ctl: string;
  private readonly token: string;
  private readonly imageDir: string;
  private dispatcher?: Agent;
  private hostCount = 0;
  /** Set by teardown: a test body that runs on after a timeout starts nothing new. */
  private closed = false;
  url = '';
  /** `sha256:<hex>` of the server's self-signed certificate, which join tokens carry. */
  fingerprint = '';
  /** The test's own view of the API (admin token). */
  client!: Client;

  constructor(readonly tag: string) {
    this.dir = mkdtempSync(join(tmpdir(), `${tag}-`));
    // dnsmasq drops privileges and QEMU runs as an unprivileged user: both need to reach into the rig's dir.
    chmodSync(this.dir, 0o755);
    this.ctl = `${tag}ctl`;
    this.token = `crowd_${tag}-admin`;
    this.imageDir = join(this.dir, 'images');
  }

  private async namespace(name: string): Promise<NamespacedRunner> {
    if (this.closed) throw new Error(`Cannot add namespace "${name}": the rig is torn down`);
    await root.run({ argv: ['ip', 'netns', 'add', name] });
    this.namespaces.push(name);
    const r = new NamespacedRunner(root, name);
    await r.run({ argv: ['ip', 'link', 'set', 'lo', 'up'] });
    return r;
  }

  /** The control namespace with the WAN bridge, `crowd server` on it, and the test's client; `images` maps image names to local qcow2 files. */
  async start(images: Record<string, string>): Promise<void> {
    mkdirSync(this.imageDir);
    for (const [name, path] of Object.entries(images)) symlinkSync(path, join(this.imageDir, `${name}.qcow2`));
    const ctl = await this.namespace(this.ctl);
    await ctl.run({ argv: ['ip', 'link', 'add', 'wan', 'type', 'bridge'] });
    await ctl.run({ argv: ['ip', 'addr', 'add', `${wan(254)}/24`, 'dev', 'wan'] });
    await ctl.run({ argv: ['ip', 'link', 'set', 'wan', 'up'] });

    const serverDir = join(this.dir, 'server');
    mkdirSync(serverDir);
    seedAdminToken(serverDir, this.token);
    const server = await startServer(serverDir, serverPort, { host: wan(254), netns: this.ctl });
    this.procs.push(server.proc);
    this.url = server.url;
    assert.match(this.url, /^https:/, 'the server on the WAN serves TLS');
    this.fingerprint = server.fingerprint!;
    // The CLI pins the certificate as `crowd login` would.
    writeFileSync(join(this.dir, 'cli.yaml'), `server: ${this.url}\ntoken: ${this.token}\nfingerprint: ${this.fingerprint}\n`, { mode: 0o600 });

    // The test lives in the root namespace: its client reaches the server through a unix socket that socat forwards into the control namespace.
    const socket = join(this.dir, 'api.sock');
    const socat = spawn('ip', ['netns', 'exec', this.ctl, 'socat', `UNIX-LISTEN:${socket},fork`, `TCP:${wan(254)}:${serverPort}`], { stdio: 'ignore' });
    this.children.push(socat);
    await until('the API socket', () => existsSync(socket), 10_000);
    const dispatcher = (this.dispatcher = new Agent({ connect: { socketPath: socket, ca: readFileSync(join(serverDir, 'tls', 'server.crt')) } }));
    const fetchVia = ((input: string | URL, init?: RequestInit) =>
      undiciFetch(input, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as typeof fetch;
    this.client = new Client({ baseUrl: this.url, authorization: `Bearer ${this.token}`, fetch: fetchVia });
  }

  /** Runs `crowd ARGV` in the control namespace; fails the test on a non-zero exit; resolves with stdout. */
  async cli(...argv: string[]): Promise<string> {
    const r = await crowd(this.url, this.token, argv, { CROWD_CONFIG: join(this.dir, 'cli.yaml') }, { netns: this.ctl });
    assert.equal(r.code, 0, `crowd ${argv.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }

  /** A host namespace with its WAN link (veth into the bridge), enrolled with a fresh join token; resolves once its node is ready. */
  async host(name: string): Promise<ClusterHost> {
    const ns = `${this.tag}${name}`;
    const underlayIp = wan(++this.hostCount);
    const runner = await this.namespace(ns);
    const ctl = new NamespacedRunner(root, this.ctl);
    await ctl.run({ argv: ['ip', 'link', 'add', `to-${name}`, 'type', 'veth', 'peer', 'name', 'wan', 'netns', ns] });
    await ctl.run({ argv: ['ip', 'link', 'set', `to-${name}`, 'master', 'wan', 'up'] });
    await runner.run({ argv: ['ip', 'addr', 'add', `${underlayIp}/24`, 'dev', 'wan'] });
    await runner.run({ argv: ['ip', 'link', 'set', 'wan', 'up'] });
    const joinToken = (await this.cli('node', 'join-token', '--ttl', '10m')).trim();
    assert.match(joinToken, /^crowdjoin\./);
    const host: ClusterHost = { name, ns, runner, underlayIp, dataDir: join(this.dir, `agent-${name}`), runDir: join(this.dir, `run-${name}`), agent: undefined! };
    this.hosts.push(host);
    this.runAgent(host, joinToken);
    await objectWhen(this.client, 'node', name, (n) => n.status.phase === 'ready', 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; agent output: ${host.agent.output().slice(-2000)}`);
    });
    // The agent enrolled over TLS trusting only the certificate the join token named, and keeps that pin.
    let pinned: unknown;
    await until('the agent to keep its identity', () => {
      try {
        pinned = (JSON.parse(readFileSync(join(host.dataDir, 'identity.json'), 'utf8')) as { fingerprint?: string }).fingerprint;
        return true;
      } catch {
        return false;
      }
    }, 30_000);
    assert.equal(pinned, this.fingerprint);
    return host;
  }

  /** Several hosts at once; fails once all have settled, so a failure leaves nothing starting behind the teardown. */
  async hostsNamed<const N extends readonly string[]>(...names: N): Promise<{ [K in keyof N]: ClusterHost }> {
    const settled = await Promise.allSettled(names.map((n) => this.host(n)));
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((r) => (r as PromiseFulfilledResult<ClusterHost>).value) as { [K in keyof N]: ClusterHost };
  }

  private runAgent(host: ClusterHost, joinToken?: string): void {
    if (this.closed) throw new Error(`Cannot start the agent of "${host.name}": the rig is torn down`);
    host.agent = startAgent({
      dataDir: host.dataDir,
      imageDir: this.imageDir,
      name: host.name,
      underlayIp: host.underlayIp,
      runDir: host.runDir,
      netns: host.ns,
      ...(joinToken ? { server: this.url, joinToken } : {}),
    });
    this.procs.push(host.agent);
  }

  /** Kills the host's agent by its pid (SIGKILL: no goodbye) and starts it again from its data dir; resolves after its first heartbeat. */
  async restartAgent(host: ClusterHost): Promise<void> {
    await host.agent.stop('SIGKILL');
    const since = Date.now();
    this.runAgent(host);
    await objectWhen(this.client, 'node', host.name, (n) => Date.parse(String(n.status.lastSeen)) > since, 60_000);
  }

  /** Waits until a VM runs, and returns it with its id and first IPv4 address. */
  async vmRunning(name: string): Promise<{ id: string; ip: string; vm: AnyObject }> {
    const vm = await objectWhen(this.client, 'vm', name, (v) => v.status.phase === 'running', 120_000);
    const ip = (vm.status.addresses as { ipv4?: string }[] | undefined)?.[0]?.ipv4;
    assert.ok(ip, `vm "${name}" has an address: ${JSON.stringify(vm.status)}`);
    return { id: vm.id, ip, vm };
  }

  /** The guest's serial console output so far, from the file QEMU writes. */
  consoleLog(host: ClusterHost, vmId: string): string {
    const file = join(host.dataDir, 'vms', vmId, 'console.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  /** Connects to the guest's serial console socket (QEMU takes one client; the agent attaches only on request). */
  async attachConsole(host: ClusterHost, vmId: string): Promise<Duplex> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(join(host.dataDir, 'vms', vmId, 'console.sock'));
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
    this.consoles.push(sock);
    sock.on('data', () => undefined);
    return sock;
  }

  /** The QEMU process of a VM on its host (the one its pid file names, or `pid`): its pid and whether it is alive. */
  async qemu(host: ClusterHost, vmId: string, pid?: number): Promise<{ pid: number | undefined; alive: boolean }> {
    const pidFile = join(host.dataDir, 'vms', vmId, 'qemu.pid');
    const which = pid ?? (await readPid(pidFile));
    return { pid: which, alive: await isVmProcess(which, pidFile) };
  }

  /** What teardown left behind: namespaces, and processes naming the rig's dir (agents, QEMU, dnsmasq, socat) on their command line. */
  leftovers(): string[] {
    const cmdline = (pid: string) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    };
    const namespaces = this.namespaces.filter((n) => existsSync(`/run/netns/${n}`)).map((n) => `namespace ${n}`);
    const procs = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && cmdline(p).includes(this.dir)).map((p) => `process ${p}: ${cmdline(p).replaceAll('\0', ' ')}`);
    return [...namespaces, ...procs];
  }

  /** Removes everything; safe to call again (a `t.after` hook backs up the test's own call). */
  async teardown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.consoles) c.destroy();
    // Agents first, so none starts anything again; then what they started, by the pid files in the rig's dir.
    for (const p of [...this.procs].reverse()) await p.stop('SIGKILL').catch(() => undefined);
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const h of this.hosts) {
      await killLeftoverQemus(h.dataDir).catch(() => undefined);
      for (const f of (existsSync(h.runDir) ? readdirSync(h.runDir) : []).filter((x) => x.endsWith('.pid'))) killIf(join(h.runDir, f), 'dnsmasq');
    }
    await this.dispatcher?.destroy().catch(() => undefined);
    // Bridges, taps, VXLAN links, veths and the nftables table go with their namespaces.
    for (const n of [...this.namespaces].reverse()) await root.run({ argv: ['ip', 'netns', 'del', n] }).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
