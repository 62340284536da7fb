/**
 * Firewall benchmark (issue 5): a firewall change on a host with 1,000 VM
 * NICs — the agent's render (desiredHostNetwork + the nftables ruleset) and
 * the apply (`nft -f -` of the whole ruleset, and the full applyHostNetwork
 * with links already in place), plus the ruleset's size. Runs inside a
 * network namespace it creates and removes (root).
 * Usage: node --import tsx bench/firewall.bench.ts [nics] [changes]
 */
import type { FirewallRule } from '../src/api/kinds/firewall.ts';
import type { HostNetworkView } from '../src/api/kinds/network.ts';
import type { AnyObject } from '../src/api/object.ts';
import { desiredHostNetwork } from '../src/agent/host-network.ts';
import { ExecRunner, type Runner } from '../src/base/runner.ts';
import { applyRuleset } from '../src/net/apply-ruleset.ts';
import { applyHostNetwork } from '../src/net/host-network.ts';
import { NamespacedRunner } from '../src/net/namespaced-runner.ts';
import { renderRuleset } from '../src/net/nft-ruleset.ts';
import { ms, summarize } from './stats.ts';

const nics = Number(process.argv[2] ?? 1000);
const changes = Number(process.argv[3] ?? 5);
if (process.getuid?.() !== 0) {
  console.log('firewall bench: needs root (network namespaces); skipped');
  process.exit(0);
}

const networks = 4;
/** NIC i's address: networks are /16s, NICs spread across them round-robin. */
const ipOf = (i: number) => {
  const j = Math.floor(i / networks) + 2;
  return `10.${i % networks}.${j >> 8}.${j & 255}`;
};
const view = (port: number): HostNetworkView => ({
  networks: Array.from({ length: networks }, (_, i) => ({
    project: 'default',
    name: `net-${i}`,
    vni: 100 + i,
    peers: ['192.0.2.2', '192.0.2.3'],
    spec: { ipv4: { subnet: `10.${i}.0.0/16` }, firewalls: ['base'] },
  })),
  firewalls: [
    {
      project: 'default',
      name: 'base',
      spec: {
        rules: [
          { direction: 'ingress', action: 'accept', protocol: 'icmp' },
          { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['22'], remote: { cidrs: ['10.0.0.0/8', '192.168.0.0/16'] } },
          { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: [String(port), '8000-8080'], rateLimit: { rate: 100, per: 'second', unit: 'connections' } },
          { direction: 'ingress', action: 'accept', protocol: 'udp', ports: ['53'], remote: { firewall: 'base' } },
          { direction: 'egress', action: 'reject', protocol: 'tcp', ports: ['25'] },
        ] satisfies FirewallRule[],
      },
    },
  ],
  members: [{ project: 'default', firewall: 'base', addresses: Array.from({ length: nics }, (_, i) => ipOf(i)) }],
});
const vms: AnyObject[] = Array.from({ length: nics }, (_, i) => ({
  id: `vm_${String(i).padStart(26, '0')}`,
  name: `vm-${i}`,
  kind: 'vm',
  project: 'default',
  spec: { image: 'i', machineType: 'm', nics: [{ network: `net-${i % networks}` }] },
  status: { node: 'a', addresses: [{ nic: 0, mac: `52:54:00:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`, ipv4: ipOf(i) }] },
})) as unknown as AnyObject[];

const root = new ExecRunner();
const ns = `cnbench${process.pid}`;
const inner = new NamespacedRunner(root, ns);
// A 1,000-NIC ruleset can take nft longer than the runner's default minute on a loaded machine.
const host: Runner = { run: (cmd) => inner.run({ ...cmd, timeoutMs: cmd.timeoutMs ?? 600_000 }) };
const spec = (port: number) => {
  const s = desiredHostNetwork(vms, view(port), { underlayIp: '192.0.2.1', dnsmasqRunDir: '/nonexistent' }).spec;
  // dnsmasq is not part of a firewall change; leave it out so no daemons start.
  return { ...s, dnsmasq: [] };
};

await root.run({ argv: ['ip', 'netns', 'add', ns] });
try {
  await host.run({ argv: ['ip', 'link', 'set', 'lo', 'up'] });
  await host.run({ argv: ['ip', 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'wan-peer'] });
  await host.run({ argv: ['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'wan'] });
  await host.run({ argv: ['ip', 'link', 'set', 'wan', 'up'] });
  let t0 = performance.now();
  await applyHostNetwork(spec(9000), { runner: host });
  console.log(`setup: ${nics} taps on ${networks} bridges with VXLAN, first apply ${ms(performance.now() - t0)}`);

  const render: number[] = [];
  const nft: number[] = [];
  const full: number[] = [];
  let text = '';
  for (let c = 0; c < changes; c++) {
    t0 = performance.now();
    const s = spec(9001 + c);
    text = renderRuleset(s.ruleset);
    render.push(performance.now() - t0);
    t0 = performance.now();
    await applyRuleset(host, text);
    nft.push(performance.now() - t0);
    t0 = performance.now();
    const out = await applyHostNetwork(spec(9101 + c), { runner: host });
    full.push(performance.now() - t0);
    if (out.linkChanges !== 0 || out.tcChanges !== 0) throw new Error(`a firewall change touched links (${out.linkChanges}) or tc (${out.tcChanges})`);
  }
  const listed = (await host.run({ argv: ['nft', 'list', 'ruleset'] })).stdout;
  const f = (xs: number[]) => { const s = summarize(xs); return `p50 ${ms(s.p50)}, max ${ms(s.max)}`; };
  console.log(`firewall change on ${nics} NICs (${changes} changes):`);
  console.log(`  render (desiredHostNetwork + renderRuleset): ${f(render)}`);
  console.log(`  apply ruleset (nft -f, one transaction):     ${f(nft)}`);
  console.log(`  full applyHostNetwork (links unchanged):     ${f(full)}`);
  console.log(`  ruleset: ${text.length} bytes, ${text.split('\n').length} lines rendered; ${listed.split('\n').length} lines listed by nft`);
} finally {
  await root.run({ argv: ['ip', 'netns', 'del', ns] }).catch(() => undefined);
}
