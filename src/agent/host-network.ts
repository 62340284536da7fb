import { createHash } from 'node:crypto';
import type { FirewallRule, FirewallSpec } from '../api/kinds/firewall.ts';
import { networkHostAddress, type HostNetworkView, type NetworkSpec } from '../api/kinds/network.ts';
import type { VmSpec, VmStatus } from '../api/kinds/vm.ts';
import { formatIpv4, formatIpv6, parsePrefix, prefixLast } from '../api/ip.ts';
import type { AnyObject } from '../api/object.ts';
import type { DnsmasqOptions } from '../net/dnsmasq-config.ts';
import type { FirewallRuleSpec } from '../net/firewall-rule.ts';
import type { HostNetworkSpec } from '../net/host-network.ts';
import type { NetworkLinks } from '../net/link-plan.ts';
import { metadataIpv4, metadataIpv6, type MemberSet, type NicRules, type RulesetNetwork } from '../net/nft-ruleset.ts';
import type { NicBandwidth } from '../net/tc-plan.ts';

/** What this host contributes to every network: its underlay address, where dnsmasq runs, who owns the taps. */
export interface HostNetworkOptions {
  /** This host's address for VXLAN; without it, networks stay local to the host. */
  underlayIp?: string;
  dnsmasqRunDir: string;
  /** The uid QEMU runs as (it opens the taps). */
  tapOwner?: number;
}

/** The host's networking for its VMs, and what each VM gets from it. */
export interface DesiredHostNetwork {
  spec: HostNetworkSpec;
  /** The taps and MACs of each VM whose NICs are ready, by VM id. */
  nics: Map<string, { tap: string; mac: string }[]>;
  /** Why a VM with NICs cannot start yet, by VM id. */
  problems: Map<string, string>;
}

const hash = (text: string, chars: number) => createHash('sha256').update(text).digest('hex').slice(0, chars);

/** A stable tap name per VM NIC, within the 15-character limit: ct + 10 hex + NIC index. */
export function tapName(vmId: string, nic: number): string {
  return `ct${hash(vmId, 10)}${nic.toString(16)}`;
}

/** The host-wide nft member set of a project's firewall (short and collision-free across projects). */
export function memberSetName(project: string, firewall: string): string {
  return `fw-${hash(`${project}/${firewall}`, 16)}`;
}

function ruleSpec(project: string, firewall: string, r: FirewallRule): FirewallRuleSpec {
  const remote = r.remote ? { ...(r.remote.cidrs ? { cidrs: r.remote.cidrs } : {}), ...(r.remote.firewall ? { set: memberSetName(project, r.remote.firewall) } : {}) } : undefined;
  return {
    direction: r.direction,
    action: r.action,
    ...(r.protocol ? { protocol: r.protocol } : {}),
    ...(r.ports ? { ports: r.ports } : {}),
    ...(remote ? { remote } : {}),
    ...(r.icmpTypes ? { icmpTypes: r.icmpTypes } : {}),
    ...(r.log ? { logPrefix: `crowd ${firewall}: ` } : {}),
    ...(r.rateLimit ? { rateLimit: r.rateLimit } : {}),
  };
}

/** The IPv4 router guests are told about: the host (`gateway: host`), the router VM's address (`vm`), or none. */
export function networkRouter(s: NetworkSpec): string | undefined {
  const mode = s.gateway?.mode ?? 'host';
  const subnet = s.ipv4 ? parsePrefix(s.ipv4.subnet) : undefined;
  return mode === 'host' ? networkHostAddress(s) : mode === 'vm' && subnet ? (s.ipv4!.gateway ?? formatIpv4(subnet.network + 1n)) : undefined;
}

/** Addresses the host holds on the bridge (IPv4 gateway or DHCP identity and the metadata address, IPv6 likewise). */
function bridgeAddresses(spec: NetworkSpec): string[] {
  const out: string[] = [];
  const v4 = networkHostAddress(spec);
  if (v4) out.push(`${v4}/${parsePrefix(spec.ipv4!.subnet)!.length}`, `${metadataIpv4}/32`);
  const p6 = spec.ipv6 ? parsePrefix(spec.ipv6.prefix) : undefined;
  if (p6) {
    const host = (spec.gateway?.mode ?? 'host') === 'host';
    out.push(`${host ? (spec.ipv6!.gateway ?? formatIpv6(p6.network + 1n)) : formatIpv6(prefixLast(p6) - 1n)}/${p6.length}`);
  }
  return [...out, `${metadataIpv6}/64`];
}

interface NetPlan {
  project: string;
  name: string;
  spec: NetworkSpec;
  key: string;
  bridge: string;
  links: NetworkLinks;
  hosts: DnsmasqOptions['hosts'];
}

/**
 * Pure: the VMs bound here + the server's network view → the host network
 * `applyHostNetwork` converges to, the taps each VM gets, and why a VM with
 * NICs cannot start yet (no view, no addresses, unknown network). Only
 * networks with a ready NIC here appear, so the last VM leaving removes one.
 */
export function desiredHostNetwork(vms: AnyObject[], view: HostNetworkView | undefined, o: HostNetworkOptions): DesiredHostNetwork {
  const nets = new Map<string, NetPlan>();
  const nicRules: NicRules[] = [];
  const bandwidth: NicBandwidth[] = [];
  const nics = new Map<string, { tap: string; mac: string }[]>();
  const problems = new Map<string, string>();
  const fwBy = new Map((view?.firewalls ?? []).map((f) => [`${f.project}/${f.name}`, f.spec]));
  for (const vm of [...vms].sort((a, b) => a.id.localeCompare(b.id))) {
    const spec = vm.spec as VmSpec;
    const status = vm.status as VmStatus;
    const project = vm.project ?? '';
    if (!spec.nics?.length) continue;
    const problem = nicProblem(vm, view);
    if (problem) {
      problems.set(vm.id, problem);
      continue;
    }
    const taps: { tap: string; mac: string }[] = [];
    spec.nics.forEach((nic, i) => {
      const n = view!.networks.find((x) => x.project === project && x.name === nic.network)!;
      const a = status.addresses!.find((x) => x.nic === i)!;
      const tap = tapName(vm.id, i);
      const plan = networkPlan(nets, n, o);
      plan.links.ports.push({ kind: 'tap', name: tap, ...(o.tapOwner !== undefined ? { owner: o.tapOwner } : {}) });
      plan.hosts.push({ mac: a.mac, ...(a.ipv4 ? { ipv4: a.ipv4 } : {}), ...(a.ipv6 && n.spec.ipv6?.mode === 'dhcpv6' ? { ipv6: a.ipv6 } : {}) });
      const fws = [...new Set([...(n.spec.firewalls ?? []), ...(nic.firewalls ?? [])])];
      const specs = fws.map((f) => [f, fwBy.get(`${project}/${f}`)] as const).filter((x): x is [string, FirewallSpec] => x[1] !== undefined);
      const gw = n.spec.gateway;
      nicRules.push({
        tap,
        bridge: plan.bridge,
        mac: a.mac,
        ipv4: a.ipv4 ? [a.ipv4] : [],
        ipv6: a.ipv6 ? [a.ipv6] : [],
        rules: specs.flatMap(([f, s]) => s.rules.map((r) => ruleSpec(project, f, r))),
        // NICs with the same firewalls share one chain pair on the host, which a firewall edit flushes in place.
        firewallKey: `${project}/${specs.map(([f]) => f).join(',')}`,
        ...(specs.some(([, s]) => s.geekMode) ? { geekMode: true } : {}),
        ...(gw?.mode === 'vm' && gw.vm === vm.name ? { router: true } : {}),
      });
      bandwidth.push({ tap, ...(nic.rateLimit?.ingressMbit ? { ingressMbit: nic.rateLimit.ingressMbit } : {}), ...(nic.rateLimit?.egressMbit ? { egressMbit: nic.rateLimit.egressMbit } : {}) });
      taps.push({ tap, mac: a.mac });
    });
    nics.set(vm.id, taps);
  }
  const plans = [...nets.values()].sort((a, b) => a.key.localeCompare(b.key));
  const sets: MemberSet[] = (view?.members ?? []).map((m) => ({ name: memberSetName(m.project, m.firewall), addresses: m.addresses }));
  const spec: HostNetworkSpec = {
    links: plans.map((p) => p.links),
    ruleset: { networks: plans.map(rulesetNetwork), nics: nicRules, ...(sets.length ? { sets } : {}) },
    bandwidth,
    dnsmasq: plans.filter((p) => p.spec.ipv4 || p.spec.ipv6).map((p) => dnsmasqOptions(p, o.dnsmasqRunDir)),
    dnsmasqRunDir: o.dnsmasqRunDir,
  };
  return { spec, nics, problems };
}

function nicProblem(vm: AnyObject, view: HostNetworkView | undefined): string | undefined {
  const status = vm.status as VmStatus;
  if (!view) return 'waiting for the network view from the server';
  for (const [i, nic] of ((vm.spec as VmSpec).nics ?? []).entries()) {
    const n = view.networks.find((x) => x.project === (vm.project ?? '') && x.name === nic.network);
    if (!n) return `network "${nic.network}" is not known to this host yet`;
    if (n.vni === undefined) return `network "${nic.network}" has no VNI yet`;
    if (!status.addresses?.some((a) => a.nic === i)) {
      const why = status.conditions?.find((c) => c.type === 'Addressed' && c.status === 'false')?.message;
      return why ?? `waiting for the server to assign addresses to NIC ${i}`;
    }
  }
  return undefined;
}

function networkPlan(nets: Map<string, NetPlan>, n: HostNetworkView['networks'][number], o: HostNetworkOptions): NetPlan {
  const key = `n${n.vni}`;
  const have = nets.get(key);
  if (have) return have;
  const bridge = `cb${n.vni}`;
  const vxlan = o.underlayIp ? { name: `cx${n.vni}`, vni: n.vni!, local: o.underlayIp, remotes: n.peers.filter((p) => p !== o.underlayIp) } : undefined;
  const mtu = n.spec.mtu ?? (vxlan ? 1450 : undefined);
  const routed = (n.spec.gateway?.mode ?? 'host') === 'host' && n.spec.ipv4 !== undefined;
  const links: NetworkLinks = {
    network: key,
    bridge,
    ...(mtu !== undefined ? { mtu } : {}),
    addresses: bridgeAddresses(n.spec),
    ...(vxlan ? { vxlan } : {}),
    ports: [],
    ...(routed ? { routed } : {}),
  };
  const plan: NetPlan = { project: n.project, name: n.name, spec: n.spec, key, bridge, links, hosts: [] };
  nets.set(key, plan);
  return plan;
}

function rulesetNetwork(p: NetPlan): RulesetNetwork {
  const routed = p.links.routed === true;
  return { bridge: p.bridge, ...(p.links.vxlan ? { vxlan: p.links.vxlan.name } : {}), ...(routed ? { natSubnet: p.spec.ipv4!.subnet } : {}) };
}

function dnsmasqOptions(p: NetPlan, runDir: string): DnsmasqOptions {
  const s = p.spec;
  const mode = s.gateway?.mode ?? 'host';
  const router = networkRouter(s);
  return {
    network: p.key,
    bridge: p.bridge,
    runDir,
    ...(p.links.mtu !== undefined ? { mtu: p.links.mtu } : {}),
    ...(s.ipv4 ? { ipv4: { subnet: s.ipv4.subnet, ...(router ? { router } : {}), ...(s.ipv4.dns ? { dns: s.ipv4.dns } : {}) } } : {}),
    ...(s.ipv6 ? { ipv6: { mode: s.ipv6.mode, prefix: s.ipv6.prefix, ...(s.ipv6.dns ? { dns: s.ipv6.dns } : {}), router: mode === 'host' } } : {}),
    hosts: p.hosts,
    staticOnly: true,
  };
}
