import { compileRule, type FirewallRuleSpec } from './firewall-rule.ts';
import type { NftObject } from './nft-model.ts';
import { shortHash } from './short-hash.ts';

/** What a firewall chain pair is compiled from: NICs with equal input share the chains. */
export interface FirewallChainInput {
  rules: FirewallRuleSpec[];
  /** Allow TCP 22 from anywhere. */
  geekMode?: boolean;
}

/** A NIC's ingress and egress chains by name, and every object (chains, limit sets) they need. */
export interface FirewallChains {
  inbound: string;
  outbound: string;
  objects: NftObject[];
}

/**
 * Pure: the chains of one firewall combination, named `in_<id>`/`out_<id>`
 * (`est_…` for what established flows must still pass). The ingress chain
 * ends in default deny; the egress chain falls through (allow). Compiled once
 * and shared by every NIC with the combination, so the ruleset grows with
 * distinct firewalls, not with NICs × rules.
 */
export function firewallChains(id: string, input: FirewallChainInput, opts: { where: string; sets: ReadonlySet<string> }): FirewallChains {
  const compiled = input.rules.map((r, i) => ({
    direction: r.direction,
    ...compileRule(r, { where: `rule ${i} of ${opts.where}`, sets: opts.sets, limitSet: `l_${id}_${i}_${shortHash(JSON.stringify(r)).slice(0, 6)}` }),
  }));
  const pick = (dir: 'ingress' | 'egress', what: 'lines' | 'established') => compiled.flatMap((c) => (c.direction === dir ? c[what] : []));
  const objects: NftObject[] = compiled.flatMap((c) => c.limitSets);
  const chain = (name: string, items: string[]) => objects.push({ kind: 'chain', name, head: '', items });
  const established = (dir: 'ingress' | 'egress', name: string, done: string) => {
    const lines = pick(dir, 'established');
    if (!lines.length) return [`ct state established,related ${done}`];
    chain(`est_${name}`, [...lines, ...(done === 'accept' ? ['accept'] : [])]);
    return [`ct state established,related goto est_${name}`];
  };
  const inbound = `in_${id}`;
  const outbound = `out_${id}`;
  chain(inbound, [
    ...established('ingress', inbound, 'accept'),
    'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept',
    'udp sport 67 udp dport 68 accept',
    'udp sport 547 udp dport 546 accept',
    ...(input.geekMode ? ['tcp dport 22 accept'] : []),
    ...pick('ingress', 'lines'),
    'drop',
  ]);
  chain(outbound, [...established('egress', outbound, 'return'), ...pick('egress', 'lines')]);
  return { inbound, outbound, objects };
}
