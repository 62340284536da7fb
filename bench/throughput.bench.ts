/**
 * Throughput benchmark (issue 5): TCP throughput between two guests with and
 * without the firewall, measured with iperf3 inside the namespaces. Guests
 * under TCG would measure the emulator, so each "guest" is a network
 * namespace whose veth's host end is named like the VM's tap and registered
 * as that NIC: the agent's desiredHostNetwork + applyHostNetwork path, with
 * anti-spoofing and firewall. `local`: both guests on one host bridge;
 * `vxlan`: one guest on each of two host namespaces joined by a veth "WAN".
 * Everything it creates is removed. Needs root and iperf3.
 * Scenarios alternate round by round and each figure is the median of the
 * rounds, because the shared machine's load drifts.
 * Usage: node --import tsx bench/throughput.bench.ts [seconds] [local|vxlan|both] [rounds]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { FirewallRule } from '../src/api/kinds/firewall.ts';
import type { HostNetworkView } from '../src/api/kinds/network.ts';
import type { AnyObject } from '../src/api/object.ts';
import { desiredHostNetwork, tapName } from '../src/agent/host-network.ts';
import { missingRoot, missingTools } from '../src/base/require-tool.ts';
import { ExecRunner, type Runner } from '../src/base/runner.ts';
import { RulesetApplier } from '../src/net/apply-ruleset.ts';
import { applyHostNetwork } from '../src/net/host-network.ts';
import { NamespacedRunner } from '../src/net/namespaced-runner.ts';
import { summarize } from './stats.ts';

const seconds = Number(process.argv[2] ?? 5);
const modes = (process.argv[3] ?? 'both') === 'both' ? ['local', 'vxlan'] : [process.argv[3]!];
const rounds = Number(process.argv[4] ?? 3);
const missing = missingRoot() ?? missingTools('ip', 'nft', 'iperf3');
if (missing) {
  console.log(`throughput bench: ${missing}; skipped`);
  process.exit(0);
}

const port = 5201;
/** The scenarios, in the order measured; `firewalls` are attached to the network (so to both NICs). */
const scenarios: { name: string; ruleset: boolean; firewalls: string[] }[] = [
  { name: 'no crowd ruleset (bare bridge)', ruleset: false, firewalls: [] },
  { name: 'allow-all firewall (baseline)', ruleset: true, firewalls: ['allow-all'] },
  { name: '5-rule firewall', ruleset: true, firewalls: ['five'] },
];
const firewalls: { name: string; rules: FirewallRule[] }[] = [
  { name: 'allow-all', rules: [{ direction: 'ingress', action: 'accept' }] },
  {
    name: 'five',
    rules: [
      { direction: 'ingress', action: 'accept', protocol: 'icmp' },
      { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['22'], remote: { cidrs: ['10.0.0.0/8', '192.168.0.0/16'] } },
      { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: [String(port), '8000-8080'], rateLimit: { rate: 100, per: 'second', unit: 'connections' } },
      { direction: 'ingress', action: 'accept', protocol: 'udp', ports: ['53'], remote: { firewall: 'five' } },
      { direction: 'egress', action: 'reject', protocol: 'tcp', ports: ['25'] },
    ],
  },
];
const guests = [
  { id: 'vm_0000000000000000000000tput1', ip: '10.250.0.11', mac: '52:54:00:fa:00:11' },
  { id: 'vm_0000000000000000000000tput2', ip: '10.250.0.12', mac: '52:54:00:fa:00:12' },
];
const underlay = ['192.0.2.1', '192.0.2.2'];

const view = (attached: string[], hosts: number): HostNetworkView => ({
  networks: [{ project: 'default', name: 'tput', vni: 250, peers: underlay.slice(0, hosts), spec: { ipv4: { subnet: '10.250.0.0/24' }, firewalls: attached } }],
  firewalls: firewalls.map((f) => ({ project: 'default', name: f.name, spec: { rules: f.rules } })),
  members: [{ project: 'default', firewall: 'five', addresses: guests.map((g) => g.ip) }],
});
const vm = (g: (typeof guests)[number]): AnyObject =>
  ({
    id: g.id, name: g.id, kind: 'vm', project: 'default',
    spec: { image: 'i', machineType: 'm', nics: [{ network: 'tput' }] },
    status: { node: 'a', addresses: [{ nic: 0, mac: g.mac, ipv4: g.ip }] },
  }) as unknown as AnyObject;

const root = new ExecRunner();
const tag = `ctp${process.pid}`;
const namespaces: string[] = [];
const children: ChildProcess[] = [];
async function namespace(suffix: string): Promise<Runner> {
  const name = `${tag}${suffix}`;
  await root.run({ argv: ['ip', 'netns', 'add', name] });
  namespaces.push(name);
  const r = new NamespacedRunner(root, name);
  await r.run({ argv: ['ip', 'link', 'set', 'lo', 'up'] });
  return r;
}

/** Starts `iperf3 -s -1` in a guest and resolves once it listens (it exits after one test). */
function iperfServer(ns: string): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns, 'iperf3', '-s', '-1', '--forceflush', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`iperf3 did not listen: ${out}`)), 10_000);
    const seen = (b: Buffer) => {
      out += b.toString();
      if (/Server listening/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`iperf3 server exited with ${code}: ${out}`));
    });
  });
}

/** Whether a connection to a port nobody listens on is dropped (times out) rather than refused: the firewall is in the path. */
async function dropped(guest: Runner, ip: string): Promise<boolean> {
  const probe = ['timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${ip}/5299`];
  return guest.run({ argv: probe }).then(
    () => false,
    (e: { result?: { code: number } }) => e.result?.code === 124,
  );
}

async function measure(mode: string): Promise<void> {
  const hosts = mode === 'vxlan' ? [await namespace('a'), await namespace('b')] : [await namespace('a')];
  if (hosts.length === 2) {
    await hosts[0]!.run({ argv: ['ip', 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'wan', 'netns', `${tag}b`] });
    for (const [i, h] of hosts.entries()) {
      await h.run({ argv: ['ip', 'addr', 'add', `${underlay[i]}/24`, 'dev', 'wan'] });
      await h.run({ argv: ['ip', 'link', 'set', 'wan', 'up'] });
    }
  }
  const hostOf = (i: number) => (hosts.length === 2 ? i : 0);
  const appliers = hosts.map(() => new RulesetApplier());
  // The guests: a namespace each, its eth0 the peer of a veth named as the agent names the VM's tap.
  for (const [i, g] of guests.entries()) {
    const ns = `${tag}g${i}`;
    const guest = await namespace(`g${i}`);
    await hosts[hostOf(i)]!.run({ argv: ['ip', 'link', 'add', tapName(g.id, 0), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns] });
    await guest.run({ argv: ['ip', 'link', 'set', 'eth0', 'address', g.mac, 'mtu', hosts.length === 2 ? '1450' : '1500', 'up'] });
    await guest.run({ argv: ['ip', 'addr', 'add', `${g.ip}/24`, 'dev', 'eth0'] });
  }
  const apply = async (s: (typeof scenarios)[number]) => {
    for (const [h, host] of hosts.entries()) {
      const mine = guests.filter((_, i) => hostOf(i) === h).map(vm);
      const spec = desiredHostNetwork(mine, view(s.firewalls, hosts.length), { ...(hosts.length === 2 ? { underlayIp: underlay[h]! } : {}), dnsmasqRunDir: '/nonexistent' }).spec;
      // The veths stand in for taps; no dnsmasq (addresses are static).
      const links = spec.links.map((l) => ({ ...l, ports: l.ports.map((p) => ({ kind: 'existing' as const, name: p.name })) }));
      const ruleset = s.ruleset ? spec.ruleset : { networks: [], nics: [] };
      await applyHostNetwork({ ...spec, links, ruleset, dnsmasq: [] }, { runner: host, ruleset: appliers[h]! });
    }
  };
  const gbits = scenarios.map((): number[] => []);
  const client = new NamespacedRunner(root, `${tag}g0`);
  for (let round = 0; round < rounds; round++) {
    for (const [i, s] of scenarios.entries()) {
      await apply(s);
      if (round === 0 && (await dropped(client, guests[1]!.ip)) !== (s.firewalls[0] === 'five')) throw new Error(`The firewall is not in the path as expected for "${s.name}"`);
      await iperfServer(`${tag}g1`);
      const out = await client.run({ argv: ['iperf3', '-c', guests[1]!.ip, '-p', String(port), '-t', String(seconds), '-J'], timeoutMs: (seconds + 30) * 1000 });
      gbits[i]!.push((JSON.parse(out.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9);
    }
  }
  const median = gbits.map((g) => summarize(g).p50);
  console.log(`${mode === 'vxlan' ? 'two hosts over VXLAN' : 'one host, one bridge'} (iperf3 TCP, 1 stream, ${seconds} s × ${rounds} rounds, median [min–max]):`);
  for (const [i, s] of scenarios.entries()) {
    const range = `[${Math.min(...gbits[i]!).toFixed(2)}–${Math.max(...gbits[i]!).toFixed(2)}]`;
    console.log(`  ${s.name.padEnd(32)} ${median[i]!.toFixed(2)} Gbit/s ${range}  ratio to allow-all ${(median[i]! / median[1]!).toFixed(2)}`);
  }
}

try {
  for (const mode of modes) {
    await measure(mode);
    for (const n of namespaces.splice(0).reverse()) await root.run({ argv: ['ip', 'netns', 'del', n] });
  }
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const n of namespaces.reverse()) await root.run({ argv: ['ip', 'netns', 'del', n] }).catch(() => undefined);
}
