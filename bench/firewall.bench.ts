/**
 * Firewall benchmark (issue 5): a firewall change on a host with 1,000 VM
 * NICs — the agent's render (desiredHostNetwork + the nftables ruleset
 * model), the incremental apply (one `nft -f -` transaction of the deltas),
 * a whole-table replace of the same ruleset for comparison, and the full
 * applyHostNetwork with links already in place; plus the ruleset's size.
 * Runs inside a network namespace it creates and removes (root).
 * Usage: node --import tsx bench/firewall.bench.ts [nics] [changes]
 */
import type { FirewallRule } from '../src/api/kinds/firewall.ts';
import type { HostNetworkView } from '../src/api/kinds/network.ts';
import type { AnyObject } from '../src/api/object.ts';
import { desiredHostNetwork } from '../src/agent/host-network.ts';
import { ExecRunner, type Runner } from '../src/base/runner.ts';
import { applyRuleset, RulesetApplier } from '../src/net/apply-ruleset.ts';
import { applyHostNetwork } from '../src/net/host-network.ts';
import { NamespacedRunner } from '../src/net/namespaced-runner.ts';
import { rulesetDelta } from '../src/net/nft-delta.ts';
import { rulesetText, type RulesetModel } from '../src/net/nft-model.ts';
import { buildRuleset } from '../src/net/nft-ruleset.ts';
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
  const applier = new RulesetApplier();
  let t0 = performance.now();
  await applier.apply(host, buildRuleset(spec(9000).ruleset));
  console.log(`first ruleset apply (whole tables, before the interfaces exist): ${ms(performance.now() - t0)}`);
  t0 = performance.now();
  await applyHostNetwork(spec(9000), { runner: host, ruleset: applier });
  console.log(`setup: ${nics} taps on ${networks} bridges with VXLAN, first applyHostNetwork ${ms(performance.now() - t0)}`);

  const render: number[] = [];
  const delta: number[] = [];
  const replace: number[] = [];
  const full: number[] = [];
  let model: RulesetModel = buildRuleset(spec(9000).ruleset);
  let deltaText = '';
  for (let c = 0; c < changes; c++) {
    t0 = performance.now();
    const next = buildRuleset(spec(9001 + c).ruleset);
    render.push(performance.now() - t0);
    deltaText = rulesetDelta(model, next) ?? '';
    model = next;
    t0 = performance.now();
    if ((await applier.apply(host, model)) !== 'delta') throw new Error('a firewall change was not applied as a delta');
    delta.push(performance.now() - t0);
    t0 = performance.now();
    await applyRuleset(host, rulesetText(model));
    replace.push(performance.now() - t0);
    t0 = performance.now();
    const out = await applyHostNetwork(spec(9101 + c), { runner: host, ruleset: applier });
    full.push(performance.now() - t0);
    if (out.linkChanges !== 0 || out.tcChanges !== 0) throw new Error(`a firewall change touched links (${out.linkChanges}) or tc (${out.tcChanges})`);
    if (out.ruleset !== 'delta') throw new Error('applyHostNetwork replaced the tables on a firewall change');
  }
  const text = rulesetText(model);
  const listed = (await host.run({ argv: ['nft', 'list', 'ruleset'] })).stdout;
  const f = (xs: number[]) => { const s = summarize(xs); return `p50 ${ms(s.p50)}, max ${ms(s.max)}`; };
  const lines = (t: string) => t.trimEnd().split('\n').length;
  console.log(`firewall change on ${nics} NICs (${changes} changes):`);
  console.log(`  render (desiredHostNetwork + buildRuleset):  ${f(render)}`);
  console.log(`  apply the change (delta, one transaction):   ${f(delta)}`);
  console.log(`  replace both tables (nft -f, one transaction): ${f(replace)}`);
  console.log(`  full applyHostNetwork (delta, links unchanged): ${f(full)}`);
  console.log(`  ruleset: ${text.length} bytes, ${lines(text)} lines rendered; ${lines(listed)} lines listed by nft; a change: ${deltaText.length} bytes, ${lines(deltaText)} lines`);
  console.log('  before (one chain pair per NIC, whole-table replace; docs/benchmarks.md): 1.85 MB, 33,079 lines, apply p50 38.2 s');
  console.log(`  ratio (old apply p50 / delta apply p50): ${(38_200 / summarize(delta).p50).toFixed(0)}x`);
} finally {
  await root.run({ argv: ['ip', 'netns', 'del', ns] }).catch(() => undefined);
}
