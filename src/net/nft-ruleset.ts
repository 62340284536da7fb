import { bridgeTable, metadataIpv4, metadataIpv6 } from './bridge-table.ts';
import { compareText } from './compare-text.ts';
import { firewallChains, type FirewallChains } from './firewall-chains.ts';
import { memberSetNames, memberSetPattern, type FirewallRuleSpec } from './firewall-rule.ts';
import { isInterfaceName } from './interface-name.ts';
import { linkLocalFromMac, normalizeMac, parseIpAddress, parseIpPrefix, prefixText } from './ip-address.ts';
import { rulesetText, type NftObject, type NftTable, type RulesetModel } from './nft-model.ts';
import { shortHash } from './short-hash.ts';

export { metadataIpv4, metadataIpv6 } from './bridge-table.ts';

/** A network's bridge as the ruleset sees it. */
export interface RulesetNetwork {
  bridge: string;
  vxlan?: string;
  /** Masquerade this IPv4 subnet leaving the host (`gateway: host`). */
  natSubnet?: string;
  /** Let guests reach the host's DNS (port 53) on this bridge. */
  dns?: boolean;
}

/** One VM NIC: what it may send from, and the firewall rules in order. */
export interface NicRules {
  tap: string;
  /**
   * Names the rule list (the agent passes the NIC's firewalls): NICs with one
   * key share one chain pair, which a change of those rules flushes in place.
   * Without it, NICs with equal rules share chains named after their content.
   */
  firewallKey?: string;
  bridge: string;
  mac: string;
  ipv4: string[];
  ipv6: string[];
  rules: FirewallRuleSpec[];
  /** Allow TCP 22 from anywhere. */
  geekMode?: boolean;
  /** A router VM (`gateway: vm`): keeps its MAC pinned but may send from any IP and send RAs. */
  router?: boolean;
}

/** Addresses of another firewall's members, referenced by rules as `remote.set`. */
export interface MemberSet {
  name: string;
  addresses: string[];
}

/** Everything the host's ruleset is rendered from. */
export interface RulesetOptions {
  networks: RulesetNetwork[];
  nics: NicRules[];
  sets?: MemberSet[];
}

const q = (s: string) => `"${s}"`;

interface NicPlan {
  nic: NicRules;
  mac: string;
  v4: string[];
  v6: string[];
  linkLocal: string;
}

function checkNic(nic: NicRules, bridges: Set<string>): NicPlan {
  const where = `NIC "${nic.tap}"`;
  if (!isInterfaceName(nic.tap)) throw new Error(`Cannot render ${where}: not a valid interface name`);
  if (!bridges.has(nic.bridge)) throw new Error(`Cannot render ${where}: bridge "${nic.bridge}" is not one of the ruleset's networks`);
  const addr = (family: 4 | 6) => (a: string) => {
    const p = parseIpAddress(a);
    if (!p || p.family !== family) throw new Error(`Cannot render ${where}: "${a}" is not an IPv${family} address`);
    return p.address;
  };
  const mac = normalizeMac(nic.mac);
  return { nic, mac, v4: nic.ipv4.map(addr(4)).sort(), v6: nic.ipv6.map(addr(6)).sort(), linkLocal: linkLocalFromMac(mac) };
}

function checkSets(sets: MemberSet[]): Map<string, { v4: string[]; v6: string[] }> {
  const out = new Map<string, { v4: string[]; v6: string[] }>();
  for (const s of sets) {
    if (!memberSetPattern.test(s.name)) throw new Error(`Cannot render member set "${s.name}": not a DNS label of at most 48 characters`);
    if (out.has(s.name)) throw new Error(`Cannot render member set "${s.name}": declared twice`);
    const v4 = new Set<string>();
    const v6 = new Set<string>();
    for (const a of s.addresses) {
      const p = parseIpPrefix(a);
      if (!p) throw new Error(`Cannot render member set "${s.name}": "${a}" is not an address or CIDR`);
      (p.family === 4 ? v4 : v6).add(prefixText(p));
    }
    out.set(s.name, { v4: [...v4].sort(), v6: [...v6].sort() });
  }
  return out;
}

/** Compiles each distinct firewall combination once; every NIC gets the chain pair of its combination. */
function nicFirewalls(nics: NicPlan[], sets: ReadonlySet<string>): { byTap: Map<string, FirewallChains>; objects: NftObject[] } {
  const byKey = new Map<string, { content: string; tap: string; chains: FirewallChains }>();
  const byTap = new Map<string, FirewallChains>();
  for (const p of nics) {
    const input = { rules: p.nic.rules, ...(p.nic.geekMode ? { geekMode: true } : {}) };
    const content = JSON.stringify(input);
    const key = p.nic.firewallKey !== undefined ? `key:${p.nic.firewallKey}` : `content:${content}`;
    let have = byKey.get(key);
    if (have && have.content !== content)
      throw new Error(`Cannot render NIC "${p.nic.tap}": firewall key "${p.nic.firewallKey}" has other rules than on NIC "${have.tap}"`);
    if (!have) {
      have = { content, tap: p.nic.tap, chains: firewallChains(shortHash(key), input, { where: `NIC "${p.nic.tap}"`, sets }) };
      byKey.set(key, have);
    }
    byTap.set(p.nic.tap, have.chains);
  }
  // Sets before the chains that use them; chains by name, so `est_…` comes before the chain that jumps there.
  const order = (o: NftObject) => `${o.kind === 'chain' ? 1 : 0}${o.name}`;
  const objects = [...byKey.values()].flatMap((c) => c.chains.objects).sort((a, b) => compareText(order(a), order(b)));
  return { byTap, objects };
}

function inetTable(opts: RulesetOptions, nics: NicPlan[], sets: Map<string, { v4: string[]; v6: string[] }>): NftTable {
  const networks = [...opts.networks].sort((a, b) => compareText(a.bridge, b.bridge));
  const bridges = networks.map((n) => q(n.bridge));
  const firewalls = nicFirewalls(nics, new Set(sets.keys()));
  const entry = (p: NicPlan, addr: string, dir: 'inbound' | 'outbound') => `${q(p.nic.bridge)} . ${addr} : jump ${firewalls.byTap.get(p.nic.tap)![dir]}`;
  const v4 = (dir: 'inbound' | 'outbound') => nics.flatMap((p) => p.v4.map((a) => entry(p, a, dir)));
  const v6 = (dir: 'inbound' | 'outbound') => nics.flatMap((p) => [p.linkLocal, ...p.v6].map((a) => entry(p, a, dir)));
  const obj = (kind: NftObject['kind'], name: string, head: string, items: string[]): NftObject => ({ kind, name, head, items });
  const memberSets = [...sets.entries()].sort(([a], [b]) => compareText(a, b)).flatMap(([name, s]) => {
    const n = memberSetNames(name);
    return [obj('set', n.v4, 'type ipv4_addr; flags interval;', s.v4), obj('set', n.v6, 'type ipv6_addr; flags interval;', s.v6)];
  });
  const dns = networks.filter((n) => n.dns).map((n) => q(n.bridge));
  const nat = networks.filter((n) => n.natSubnet !== undefined);
  return {
    family: 'inet',
    name: 'crowd',
    objects: [
      obj('set', 'bridges', 'type ifname;', bridges),
      ...memberSets,
      obj('map', 'ingress_v4', 'type ifname . ipv4_addr : verdict;', v4('inbound')),
      obj('map', 'ingress_v6', 'type ifname . ipv6_addr : verdict;', v6('inbound')),
      obj('map', 'egress_v4', 'type ifname . ipv4_addr : verdict;', v4('outbound')),
      obj('map', 'egress_v6', 'type ifname . ipv6_addr : verdict;', v6('outbound')),
      obj('chain', 'forward', 'type filter hook forward priority 0; policy accept;', [
        `ip daddr ${metadataIpv4} drop`,
        `ip6 daddr ${metadataIpv6} drop`,
        ...networks.map((n) => `iifname ${q(n.bridge)} oifname @bridges oifname != ${q(n.bridge)} drop`),
        'ct state invalid drop',
        'iifname . ip saddr vmap @egress_v4',
        'iifname . ip6 saddr vmap @egress_v6',
        'oifname . ip daddr vmap @ingress_v4',
        'oifname . ip6 daddr vmap @ingress_v6',
        'ct state established,related accept',
      ]),
      obj('chain', 'input', 'type filter hook input priority 0; policy accept;', [
        'iifname != @bridges accept',
        'ct state established,related accept',
        'iifname . ip saddr vmap @egress_v4',
        'iifname . ip6 saddr vmap @egress_v6',
        'udp dport { 67, 547 } accept',
        'meta l4proto { icmp, ipv6-icmp } accept',
        `ip daddr ${metadataIpv4} tcp dport 80 accept`,
        `ip6 daddr ${metadataIpv6} tcp dport 80 accept`,
        ...(dns.length ? [`iifname { ${dns.join(', ')} } meta l4proto { tcp, udp } th dport 53 accept`] : []),
        'drop',
      ]),
      obj('chain', 'output', 'type filter hook output priority 0; policy accept;', [
        `ip saddr ${metadataIpv4} tcp sport 80 ip ttl set 1`,
        `ip6 saddr ${metadataIpv6} tcp sport 80 ip6 hoplimit set 1`,
        'oifname != @bridges accept',
        'ct state established,related accept',
        'oifname . ip daddr vmap @ingress_v4',
        'oifname . ip6 daddr vmap @ingress_v6',
      ]),
      ...(nat.length
        ? [obj('chain', 'postrouting', 'type nat hook postrouting priority srcnat; policy accept;', nat.map((n) => `ip saddr ${n.natSubnet} oifname != ${q(n.bridge)} masquerade`))]
        : []),
      ...firewalls.objects,
    ],
  };
}

function checkNetworks(networks: RulesetNetwork[]): void {
  const seen = new Set<string>();
  for (const n of networks) {
    for (const name of [n.bridge, ...(n.vxlan ? [n.vxlan] : [])]) {
      if (!isInterfaceName(name)) throw new Error(`Cannot render network on bridge "${n.bridge}": "${name}" is not a valid interface name`);
      if (seen.has(name)) throw new Error(`Cannot render network on bridge "${n.bridge}": interface "${name}" is used twice`);
      seen.add(name);
    }
    if (n.natSubnet !== undefined) {
      const p = parseIpPrefix(n.natSubnet);
      if (!p || p.family !== 4) throw new Error(`Cannot render network on bridge "${n.bridge}": NAT subnet "${n.natSubnet}" is not an IPv4 CIDR`);
    }
  }
}

/**
 * Pure: the whole crowdcloud ruleset as data — two tables, whose size grows
 * with NICs only by set and map elements:
 *
 * - `table bridge crowd`: anti-spoofing for every tap (see bridgeTable).
 * - `table inet crowd`: stateful firewalls (bridged traffic reaches these
 *   hooks through the bridges' nf_call_iptables), one chain pair per distinct
 *   firewall combination, found through `bridge . address` verdict maps;
 *   established flows skip the rules but not their packet-rate limits;
 *   networks isolated from each other, guests reaching only DHCP, ICMP,
 *   metadata (and DNS) on the host, TTL/hop limit 1 on metadata replies,
 *   masquerade for host-gateway networks.
 */
export function buildRuleset(opts: RulesetOptions): RulesetModel {
  checkNetworks(opts.networks);
  const sets = checkSets(opts.sets ?? []);
  const bridges = new Set(opts.networks.map((n) => n.bridge));
  const nics = opts.nics.map((n) => checkNic(n, bridges)).sort((a, b) => compareText(a.nic.tap, b.nic.tap));
  const taken = new Map<string, string>();
  for (const p of nics) {
    const claims = [`tap "${p.nic.tap}"`, `MAC "${p.mac}"`, ...[...p.v4, p.linkLocal, ...p.v6].map((a) => `address "${a}" on bridge "${p.nic.bridge}"`)];
    for (const claim of claims) {
      const other = taken.get(claim);
      if (other !== undefined) throw new Error(`Cannot render NIC "${p.nic.tap}": ${claim} is also NIC "${other}"'s`);
      taken.set(claim, p.nic.tap);
    }
  }
  const vxlans = opts.networks.flatMap((n) => (n.vxlan ? [n.vxlan] : []));
  const taps = nics.map((p) => ({ tap: p.nic.tap, mac: p.mac, v4: p.v4, v6: [p.linkLocal, ...p.v6], ...(p.nic.router ? { router: true } : {}) }));
  return [bridgeTable(taps, vxlans), inetTable(opts, nics, sets)];
}

/** Pure: the whole ruleset as one `nft -f` script replacing only crowdcloud's two tables, in one transaction. */
export function renderRuleset(opts: RulesetOptions): string {
  return rulesetText(buildRuleset(opts));
}
