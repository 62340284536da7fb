import { compileRule, memberSetNames, memberSetPattern, type FirewallRuleSpec } from './firewall-rule.ts';
import { ipv6Hex, linkLocalFromMac, normalizeMac, parseIpAddress, parseIpPrefix, prefixText } from './ip-address.ts';
import { compareText } from './compare-text.ts';
import { isInterfaceName } from './interface-name.ts';

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

/** Where guests find the metadata service (served by their own host only). */
export const metadataIpv4 = '169.254.169.254';
export const metadataIpv6 = 'fe80::a9fe:a9fe';

const q = (s: string) => `"${s}"`;
const elements = (xs: string[]) => (xs.length ? ` elements = { ${xs.join(', ')} };` : '');

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

function spoofChain(p: NicPlan): string[] {
  const { nic, mac } = p;
  const out = [`\tchain spoof_${nic.tap} {`, `\t\tether saddr != ${mac} drop`, `\t\tether type arp arp saddr ether != ${mac} drop`];
  if (!nic.router) {
    if (p.v4.length) {
      out.push(
        `\t\tether type arp arp saddr ip != { 0.0.0.0, ${p.v4.join(', ')} } drop`,
        '\t\tether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return',
        `\t\tether type ip ip saddr != { ${p.v4.join(', ')} } drop`,
      );
    } else out.push('\t\tether type { arp, ip } drop');
    out.push(
      '\t\tether type ip6 ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } return',
      `\t\tether type ip6 ip6 saddr != { ${[p.linkLocal, ...p.v6].join(', ')} } drop`,
      // Neighbour advertisements: the target address (at bit 384) and the target MAC option (bit 528) must be the NIC's own.
      `\t\tether type ip6 icmpv6 type nd-neighbor-advert @nh,384,128 != { ${[p.linkLocal, ...p.v6].map(ipv6Hex).join(', ')} } drop`,
      `\t\tether type ip6 icmpv6 type nd-neighbor-advert @nh,528,48 != 0x${mac.replace(/:/g, '')} drop`,
      '\t\tether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop',
    );
  }
  out.push('\t\tether type ip udp sport 67 drop', '\t\tether type ip6 udp sport 547 drop', '\t\tether type != { arp, ip, ip6 } drop', '\t}');
  return out;
}

/** A NIC's chains and the named limits its rules share. */
function nicChains(p: NicPlan, sets: ReadonlySet<string>): { chains: string[]; limits: string[] } {
  const { nic } = p;
  const compiled = nic.rules.map((r, i) => ({
    direction: r.direction,
    ...compileRule(r, { where: `rule ${i} of NIC "${nic.tap}"`, sets, limitName: `r_${nic.tap}_${i}` }),
  }));
  const pick = (dir: 'ingress' | 'egress', what: 'lines' | 'established') =>
    compiled.flatMap((c) => (c.direction === dir ? c[what] : [])).map((l) => `\t\t${l}`);
  const chains: string[] = [];
  const chain = (name: string, body: string[]) => chains.push(`\tchain ${name} {`, ...body, '\t}');
  const established = (dir: 'ingress' | 'egress', name: string, done: string) => {
    const lines = pick(dir, 'established');
    if (!lines.length) return [`\t\tct state established,related ${done}`];
    chain(`est_${name}`, [...lines, ...(done === 'accept' ? ['\t\taccept'] : [])]);
    return [`\t\tct state established,related goto est_${name}`];
  };
  const inbound = [
    ...established('ingress', `in_${nic.tap}`, 'accept'),
    '\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept',
    '\t\tudp sport 67 udp dport 68 accept',
    '\t\tudp sport 547 udp dport 546 accept',
    ...(nic.geekMode ? ['\t\ttcp dport 22 accept'] : []),
    ...pick('ingress', 'lines'),
    '\t\tdrop',
  ];
  const outbound = [...established('egress', `out_${nic.tap}`, 'return'), ...pick('egress', 'lines')];
  chain(`in_${nic.tap}`, inbound);
  chain(`out_${nic.tap}`, outbound);
  return { chains, limits: compiled.flatMap((c) => (c.limit ? [`\t${c.limit.definition}`] : [])) };
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

function bridgeTable(nics: NicPlan[], vxlans: string[]): string[] {
  const spoofMap = nics.map((p) => `${q(p.nic.tap)} : jump spoof_${p.nic.tap}`);
  return [
    'table bridge crowd {',
    `\tset vxlans { type ifname;${elements(vxlans.map(q))} }`,
    `\tmap spoof { type ifname : verdict;${elements(spoofMap)} }`,
    '\tchain prerouting {',
    '\t\ttype filter hook prerouting priority -300; policy accept;',
    '\t\tiifname vmap @spoof',
    '\t}',
    '\tchain forward {',
    '\t\ttype filter hook forward priority -300; policy accept;',
    `\t\tether type ip ip daddr ${metadataIpv4} drop`,
    `\t\tether type ip6 ip6 daddr ${metadataIpv6} drop`,
    '\t}',
    '\tchain input {',
    '\t\ttype filter hook input priority -300; policy accept;',
    '\t\tiifname @vxlans drop',
    '\t}',
    '\tchain output {',
    '\t\ttype filter hook output priority -300; policy accept;',
    '\t\toifname @vxlans drop',
    '\t}',
    ...nics.flatMap(spoofChain),
    '}',
  ];
}

function inetTable(opts: RulesetOptions, nics: NicPlan[], sets: Map<string, { v4: string[]; v6: string[] }>): string[] {
  const networks = [...opts.networks].sort((a, b) => compareText(a.bridge, b.bridge));
  const bridges = networks.map((n) => q(n.bridge));
  const entry = (p: NicPlan, addr: string, chain: string) => `${q(p.nic.bridge)} . ${addr} : jump ${chain}_${p.nic.tap}`;
  const v4 = (chain: string) => nics.flatMap((p) => p.v4.map((a) => entry(p, a, chain)));
  const v6 = (chain: string) => nics.flatMap((p) => [p.linkLocal, ...p.v6].map((a) => entry(p, a, chain)));
  const setLines = [...sets.entries()].sort(([a], [b]) => compareText(a, b)).flatMap(([name, s]) => {
    const n = memberSetNames(name);
    return [
      `\tset ${n.v4} { type ipv4_addr; flags interval;${elements(s.v4)} }`,
      `\tset ${n.v6} { type ipv6_addr; flags interval;${elements(s.v6)} }`,
    ];
  });
  const dns = networks.filter((n) => n.dns).map((n) => q(n.bridge));
  const perNic = nics.map((p) => nicChains(p, new Set(sets.keys())));
  const nat = networks.filter((n) => n.natSubnet !== undefined);
  return [
    'table inet crowd {',
    `\tset bridges { type ifname;${elements(bridges)} }`,
    ...setLines,
    ...perNic.flatMap((n) => n.limits),
    `\tmap ingress_v4 { type ifname . ipv4_addr : verdict;${elements(v4('in'))} }`,
    `\tmap ingress_v6 { type ifname . ipv6_addr : verdict;${elements(v6('in'))} }`,
    `\tmap egress_v4 { type ifname . ipv4_addr : verdict;${elements(v4('out'))} }`,
    `\tmap egress_v6 { type ifname . ipv6_addr : verdict;${elements(v6('out'))} }`,
    '\tchain forward {',
    '\t\ttype filter hook forward priority 0; policy accept;',
    `\t\tip daddr ${metadataIpv4} drop`,
    `\t\tip6 daddr ${metadataIpv6} drop`,
    ...networks.map((n) => `\t\tiifname ${q(n.bridge)} oifname @bridges oifname != ${q(n.bridge)} drop`),
    '\t\tct state invalid drop',
    '\t\tiifname . ip saddr vmap @egress_v4',
    '\t\tiifname . ip6 saddr vmap @egress_v6',
    '\t\toifname . ip daddr vmap @ingress_v4',
    '\t\toifname . ip6 daddr vmap @ingress_v6',
    '\t\tct state established,related accept',
    '\t}',
    '\tchain input {',
    '\t\ttype filter hook input priority 0; policy accept;',
    '\t\tiifname != @bridges accept',
    '\t\tct state established,related accept',
    '\t\tiifname . ip saddr vmap @egress_v4',
    '\t\tiifname . ip6 saddr vmap @egress_v6',
    '\t\tudp dport { 67, 547 } accept',
    '\t\tmeta l4proto { icmp, ipv6-icmp } accept',
    `\t\tip daddr ${metadataIpv4} tcp dport 80 accept`,
    `\t\tip6 daddr ${metadataIpv6} tcp dport 80 accept`,
    ...(dns.length ? [`\t\tiifname { ${dns.join(', ')} } meta l4proto { tcp, udp } th dport 53 accept`] : []),
    '\t\tdrop',
    '\t}',
    '\tchain output {',
    '\t\ttype filter hook output priority 0; policy accept;',
    `\t\tip saddr ${metadataIpv4} tcp sport 80 ip ttl set 1`,
    `\t\tip6 saddr ${metadataIpv6} tcp sport 80 ip6 hoplimit set 1`,
    '\t\toifname != @bridges accept',
    '\t\tct state established,related accept',
    '\t\toifname . ip daddr vmap @ingress_v4',
    '\t\toifname . ip6 daddr vmap @ingress_v6',
    '\t}',
    ...(nat.length
      ? [
          '\tchain postrouting {',
          '\t\ttype nat hook postrouting priority srcnat; policy accept;',
          ...nat.map((n) => `\t\tip saddr ${n.natSubnet} oifname != ${q(n.bridge)} masquerade`),
          '\t}',
        ]
      : []),
    ...perNic.flatMap((n) => n.chains),
    '}',
  ];
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
 * Pure: the whole crowdcloud ruleset as one `nft -f` script that deletes and
 * recreates only crowdcloud's two tables in one transaction.
 *
 * - `table bridge crowd`: per-tap anti-spoofing before anything else sees a
 *   frame (MAC, ARP, source IPs, neighbour advertisements; no DHCP server
 *   replies or RAs from guests),
 *   the metadata addresses never bridged, and host frames never sent to or
 *   taken from the VXLAN ports (DHCP, RA and gateway stay host-local).
 * - `table inet crowd`: stateful per-NIC firewalls (bridged traffic reaches
 *   these hooks through the bridges' nf_call_iptables; established flows
 *   skip the rules but not their packet-rate limits), networks isolated
 *   from each other, guests reaching only DHCP, ICMP, metadata (and DNS) on
 *   the host, TTL/hop limit 1 on metadata replies, masquerade for host-gateway networks.
 */
export function renderRuleset(opts: RulesetOptions): string {
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
  const vxlans = opts.networks.flatMap((n) => (n.vxlan ? [n.vxlan] : [])).sort();
  return [
    '# crowdcloud host firewall: generated, do not edit',
    'table bridge crowd {}',
    'delete table bridge crowd',
    'table inet crowd {}',
    'delete table inet crowd',
    ...bridgeTable(nics, vxlans),
    ...inetTable(opts, nics, sets),
    '',
  ].join('\n');
}
