import { parseIpPrefix, prefixText } from './ip-address.ts';
import type { NftObject } from './nft-model.ts';

/** One firewall rule as src/net takes it (the agent maps the API's rules onto this). */
export interface FirewallRuleSpec {
  direction: 'ingress' | 'egress';
  action: 'accept' | 'drop' | 'reject';
  protocol?: 'any' | 'tcp' | 'udp' | 'icmp' | 'icmpv6';
  /** "22" or "8000-8080": the destination port (the NIC's for ingress, the remote's for egress). */
  ports?: string[];
  /** The other side: CIDRs or single addresses, and/or a member set declared in the ruleset. */
  remote?: { cidrs?: string[]; set?: string };
  icmpTypes?: number[];
  /** Log matching packets with this prefix. */
  logPrefix?: string;
  /** Packets or new connections per second/minute this rule lets through. */
  rateLimit?: { rate: number; per: 'second' | 'minute'; unit: 'packets' | 'connections' };
}

/** Names of the nftables sets holding a member set's addresses. */
export function memberSetNames(name: string): { v4: string; v6: string } {
  const id = name.replace(/-/g, '_');
  return { v4: `m_${id}_v4`, v6: `m_${id}_v6` };
}

/** Member set names: DNS labels short enough for nft set names. */
export const memberSetPattern = /^[a-z0-9][a-z0-9-]{0,47}$/;

function fail(where: string, message: string): never {
  throw new Error(`Cannot compile ${where}: ${message}`);
}

function portsText(where: string, ports: string[]): string {
  const parts = ports.map((p) => {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(p);
    const lo = Number(m?.[1]);
    const hi = Number(m?.[2] ?? m?.[1]);
    if (!m || lo < 1 || hi > 65535 || lo > hi) fail(where, `"${p}" is not a port or range within 1-65535`);
    return lo === hi ? String(lo) : `${lo}-${hi}`;
  });
  return parts.length === 1 ? parts[0]! : `{ ${parts.join(', ')} }`;
}

const list = (xs: string[]) => (xs.length === 1 ? xs[0]! : `{ ${xs.join(', ')} }`);

/** The protocol part of a rule, or undefined when the rule cannot match this family. */
function protocolMatch(where: string, rule: FirewallRuleSpec, family: 4 | 6 | undefined): string | undefined {
  const proto = rule.protocol ?? 'any';
  if (rule.ports?.length && proto !== 'tcp' && proto !== 'udp') fail(where, `ports need protocol tcp or udp, not "${proto}"`);
  if (rule.icmpTypes?.length && proto !== 'icmp' && proto !== 'icmpv6') fail(where, `ICMP types need protocol icmp or icmpv6, not "${proto}"`);
  for (const t of rule.icmpTypes ?? []) if (!Number.isInteger(t) || t < 0 || t > 255) fail(where, `ICMP type ${t} is outside 0-255`);
  const types = (rule.icmpTypes ?? []).map(String);
  switch (proto) {
    case 'any':
      return '';
    case 'tcp':
    case 'udp':
      return rule.ports?.length ? `${proto} dport ${portsText(where, rule.ports)}` : `meta l4proto ${proto}`;
    case 'icmp':
      if (family === 6) return undefined;
      return types.length ? `icmp type ${list(types)}` : 'meta l4proto icmp';
    case 'icmpv6':
      if (family === 4) return undefined;
      return types.length ? `icmpv6 type ${list(types)}` : 'meta l4proto ipv6-icmp';
    default:
      return fail(where, `protocol "${String(proto)}" is not one of any, tcp, udp, icmp, icmpv6`);
  }
}

/** The address parts of a rule: one entry per line to render ('' when the rule has no remote). */
function remoteMatches(where: string, rule: FirewallRuleSpec, sets: ReadonlySet<string>): { family?: 4 | 6; text: string }[] {
  const remote = rule.remote;
  if (!remote) return [{ text: '' }];
  if (!remote.cidrs?.length && remote.set === undefined) fail(where, 'remote needs cidrs or a set');
  const side = rule.direction === 'ingress' ? 'saddr' : 'daddr';
  const out: { family: 4 | 6; text: string }[] = [];
  for (const family of [4, 6] as const) {
    const cidrs = (remote.cidrs ?? []).map((c) => {
      const p = parseIpPrefix(c);
      if (!p) fail(where, `"${c}" is not a CIDR with zero host bits or an address`);
      return p;
    });
    const mine = [...new Set(cidrs.filter((p) => p.family === family).map(prefixText))].sort();
    const ip = family === 4 ? 'ip' : 'ip6';
    if (mine.length) out.push({ family, text: `${ip} ${side} ${list(mine)}` });
    if (remote.set !== undefined) {
      if (!sets.has(remote.set)) fail(where, `member set "${remote.set}" is not declared`);
      const names = memberSetNames(remote.set);
      out.push({ family, text: `${ip} ${side} @${family === 4 ? names.v4 : names.v6}` });
    }
  }
  return out;
}

function checkRate(where: string, r: NonNullable<FirewallRuleSpec['rateLimit']>): void {
  if (!Number.isInteger(r.rate) || r.rate < 1 || r.rate > 1_000_000) fail(where, `rate ${r.rate} is outside 1-1000000`);
  if (r.per !== 'second' && r.per !== 'minute') fail(where, `rate period "${String(r.per)}" is not second or minute`);
  if (r.unit !== 'packets' && r.unit !== 'connections') fail(where, `rate unit "${String(r.unit)}" is not packets or connections`);
}

function logText(where: string, prefix: string | undefined): string {
  if (prefix === undefined) return '';
  if (!/^[A-Za-z0-9 _.:=/-]{1,64}$/.test(prefix)) fail(where, `log prefix "${prefix}" needs 1-64 of A-Z a-z 0-9 space _ . : = / -`);
  return `log prefix "${prefix}" `;
}

/** A rule compiled for a firewall chain. */
export interface CompiledRule {
  /** Lines for the chain new (not established) packets walk, in rule order. */
  lines: string[];
  /** Lines established packets must pass too: packet-rate limits apply to whole flows. */
  established: string[];
  /** The dynamic sets holding this rule's per-NIC rate limit buckets (one per address family). */
  limitSets: NftObject[];
}

/** The NIC a packet belongs to in a chain of this direction: its bridge and address (receiver for ingress, sender for egress). */
function nicKey(direction: FirewallRuleSpec['direction'], family: 4 | 6): string {
  const ip = family === 4 ? 'ip' : 'ip6';
  return direction === 'ingress' ? `oifname . ${ip} daddr` : `iifname . ${ip} saddr`;
}

const protocolFamily = (rule: FirewallRuleSpec) => (rule.protocol === 'icmp' ? 4 : rule.protocol === 'icmpv6' ? 6 : undefined);

/**
 * Compiles one rule into nftables lines for a firewall's ingress or egress
 * chain, shared by every NIC with that firewall. In an egress chain "accept"
 * is `return`: the packet still has to pass the receiving NIC's ingress chain
 * in the same hook. A rate limit holds per NIC address (`limitSet` names the
 * dynamic sets of buckets, keyed by bridge and address): an accept rule drops
 * what exceeds it, a drop/reject rule acts on at most that much.
 */
export function compileRule(rule: FirewallRuleSpec, opts: { where: string; sets: ReadonlySet<string>; limitSet: string }): CompiledRule {
  const { where } = opts;
  if (rule.direction !== 'ingress' && rule.direction !== 'egress') fail(where, `direction "${String(rule.direction)}" is not ingress or egress`);
  if (!['accept', 'drop', 'reject'].includes(rule.action)) fail(where, `action "${String(rule.action)}" is not accept, drop or reject`);
  const log = logText(where, rule.logPrefix);
  const verdict =
    rule.action === 'accept'
      ? rule.direction === 'ingress' ? 'accept' : 'return'
      : rule.action === 'drop'
        ? 'drop'
        : rule.protocol === 'tcp' ? 'reject with tcp reset' : 'reject with icmpx admin-prohibited';
  const r = rule.rateLimit;
  if (r) checkRate(where, r);
  const out: CompiledRule = { lines: [], established: [], limitSets: [] };
  const families = new Set<4 | 6>();
  const limited = (family: 4 | 6) => {
    families.add(family);
    return `update @${opts.limitSet}_${family} { ${nicKey(rule.direction, family)} limit rate ${rule.action === 'accept' ? 'over ' : ''}${r!.rate}/${r!.per} }`;
  };
  const newOnly = r?.unit === 'connections' ? 'ct state new ' : '';
  for (const remote of remoteMatches(where, rule, opts.sets)) {
    const proto = protocolMatch(where, rule, remote.family);
    if (proto === undefined) continue;
    const match = [remote.text, proto].filter(Boolean).join(' ');
    const prefix = match ? `${match} ` : '';
    if (!r) {
      out.lines.push(`${prefix}${log}${verdict}`);
      continue;
    }
    const family = remote.family ?? protocolFamily(rule);
    for (const f of family ? [family] : ([4, 6] as const)) {
      if (rule.action === 'accept') out.lines.push(`${prefix}${newOnly}${limited(f)} drop`);
      else out.lines.push(`${prefix}${newOnly}${limited(f)} ${log}${verdict}`);
      if (r.unit === 'packets') out.established.push(`${prefix}${limited(f)} drop`);
    }
    if (rule.action === 'accept') out.lines.push(`${prefix}${log}${verdict}`);
  }
  out.limitSets = [...families].sort().map((f) => ({
    kind: 'set',
    name: `${opts.limitSet}_${f}`,
    head: `type ifname . ${f === 4 ? 'ipv4_addr' : 'ipv6_addr'}; size 65535; flags dynamic,timeout; timeout 1m;`,
    items: [],
  }));
  return out;
}
