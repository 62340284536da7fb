import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertGolden } from './golden.ts';
import { buildRuleset, renderRuleset, type NicRules, type RulesetOptions } from './nft-ruleset.ts';
import { richRuleset } from './nft-ruleset.fixture.ts';

test('the ruleset with every rule feature renders as the golden text', () => {
  assertGolden(renderRuleset(richRuleset), new URL('./testdata/ruleset.golden.nft', import.meta.url));
});

test('rendering does not depend on the order NICs, networks or set members come in', () => {
  const shuffled: RulesetOptions = {
    networks: [...richRuleset.networks].reverse(),
    nics: [...richRuleset.nics].reverse(),
    sets: richRuleset.sets!.map((s) => ({ ...s, addresses: [...s.addresses].reverse() })).reverse(),
  };
  assert.equal(renderRuleset(shuffled), renderRuleset(richRuleset));
});

test('an empty host still owns its two tables and only those', () => {
  const text = renderRuleset({ networks: [], nics: [] });
  assert.match(text, /^table bridge crowd \{\}\ndelete table bridge crowd\ntable inet crowd \{\}\ndelete table inet crowd\n/m);
  assert.deepEqual(text.match(/^table \S+ \S+/gm), ['table bridge crowd', 'table inet crowd', 'table bridge crowd', 'table inet crowd']);
  assert.doesNotMatch(text, /postrouting/);
});

test('egress accept only returns, so the receiving NIC\'s ingress chain still decides', () => {
  const text = renderRuleset({
    networks: [{ bridge: 'b' }],
    nics: [{ tap: 't', bridge: 'b', mac: '52:54:00:00:00:01', ipv4: ['10.0.0.2'], ipv6: [], rules: [{ direction: 'egress', action: 'accept', protocol: 'udp' }] }],
  });
  assert.match(text, /chain out_[0-9a-f]{12} \{\n\t\tct state established,related return\n\t\tmeta l4proto udp return\n\t\}/);
  assert.match(text, /\tchain in_[0-9a-f]{12} \{\n(?:\t\t.*\n)*\t\tdrop\n\t\}/);
});

const nic: NicRules = { tap: 't1', bridge: 'b1', mac: '52:54:00:00:00:01', ipv4: ['10.0.0.2'], ipv6: [], rules: [] };

test('bad rules and NICs are refused with the place and the reason', () => {
  const cases: [Partial<NicRules>, RegExp][] = [
    [{ rules: [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['0'] }] }, /Cannot compile rule 0 of NIC "t1": "0" is not a port or range within 1-65535/],
    [{ rules: [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['90-80'] }] }, /"90-80" is not a port/],
    [{ rules: [{ direction: 'ingress', action: 'accept', protocol: 'icmp', ports: ['80'] }] }, /ports need protocol tcp or udp, not "icmp"/],
    [{ rules: [{ direction: 'ingress', action: 'accept', protocol: 'sctp' as 'tcp' }] }, /protocol "sctp" is not one of/],
    [{ rules: [{ direction: 'ingress', action: 'accept', remote: { cidrs: ['10.0.0.1/24'] } }] }, /"10.0.0.1\/24" is not a CIDR with zero host bits/],
    [{ rules: [{ direction: 'ingress', action: 'accept', remote: { set: 'nope' } }] }, /member set "nope" is not declared/],
    [{ rules: [{ direction: 'ingress', action: 'accept', remote: {} }] }, /remote needs cidrs or a set/],
    [{ rules: [{ direction: 'inbound' as 'ingress', action: 'accept' }] }, /direction "inbound" is not ingress or egress/],
    [{ rules: [{ direction: 'ingress', action: 'allow' as 'accept' }] }, /action "allow" is not accept, drop or reject/],
    [{ rules: [{ direction: 'ingress', action: 'accept', logPrefix: 'a"; drop' }] }, /log prefix "a"; drop" needs/],
    [{ rules: [{ direction: 'ingress', action: 'accept', rateLimit: { rate: 0, per: 'second', unit: 'packets' } }] }, /rate 0 is outside/],
    [{ rules: [{ direction: 'ingress', action: 'accept', protocol: 'icmp', icmpTypes: [256] }] }, /ICMP type 256 is outside 0-255/],
    [{ ipv4: ['fd00::1'] }, /Cannot render NIC "t1": "fd00::1" is not an IPv4 address/],
    [{ mac: 'zz' }, /Cannot use MAC "zz"/],
    [{ bridge: 'other' }, /bridge "other" is not one of the ruleset's networks/],
    [{ tap: 'bad name' }, /Cannot render NIC "bad name": not a valid interface name/],
  ];
  for (const [patch, message] of cases) assert.throws(() => renderRuleset({ networks: [{ bridge: 'b1' }], nics: [{ ...nic, ...patch }] }), message);
});

test('packet-rate limits also hold for established flows, one bucket per NIC address shared by both paths', () => {
  const text = renderRuleset({
    networks: [{ bridge: 'b' }],
    nics: [{ ...nic, bridge: 'b', rules: [{ direction: 'ingress', action: 'accept', protocol: 'icmp', rateLimit: { rate: 5, per: 'second', unit: 'packets' } }] }],
  });
  const set = /\tset (l_[0-9a-f]{12}_0_[0-9a-f]{6}_4) \{ type ifname \. ipv4_addr; size 65535; flags dynamic,timeout; timeout 1m; \}\n/.exec(text)?.[1];
  assert.ok(set, 'a dynamic set of per-NIC buckets');
  const limited = `meta l4proto icmp update @${set} { oifname . ip daddr limit rate over 5/second } drop`;
  assert.match(text, new RegExp(`\tchain (est_in_[0-9a-f]{12}) \\{\n\t\t${escape(limited)}\n\t\taccept\n\t\}`));
  assert.match(text, new RegExp(`\tchain in_[0-9a-f]{12} \\{\n\t\tct state established,related goto est_in_[0-9a-f]{12}\n(?:\t\t.*\n)*\t\t${escape(limited)}\n\t\tmeta l4proto icmp accept\n`));
});

test('a rate limit on a rule for both families keeps one bucket set per family, keyed by the sender on egress', () => {
  const text = renderRuleset({
    networks: [{ bridge: 'b' }],
    nics: [{ ...nic, bridge: 'b', rules: [{ direction: 'egress', action: 'drop', protocol: 'udp', rateLimit: { rate: 7, per: 'minute', unit: 'connections' } }] }],
  });
  assert.match(text, /meta l4proto udp ct state new update @l_\w+_4 \{ iifname \. ip saddr limit rate 7\/minute \} drop\n/);
  assert.match(text, /meta l4proto udp ct state new update @l_\w+_6 \{ iifname \. ip6 saddr limit rate 7\/minute \} drop\n/);
  assert.match(text, /set l_\w+_6 \{ type ifname \. ipv6_addr;/);
});

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const chainsOf = (o: RulesetOptions) => buildRuleset(o)[1]!.objects.filter((x) => x.kind === 'chain').map((x) => x.name);

test('NICs with one firewall share one chain pair, so the ruleset grows with NICs only by map and set elements', () => {
  const rules: NicRules['rules'] = [
    { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['22'] },
    { direction: 'egress', action: 'reject', protocol: 'tcp', ports: ['25'] },
  ];
  const many = (n: number, key?: string): RulesetOptions => ({
    networks: [{ bridge: 'b' }],
    nics: Array.from({ length: n }, (_, i) => ({
      tap: `t${i}`, bridge: 'b', mac: `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`, ipv4: [`10.0.1.${i + 2}`], ipv6: [], rules, ...(key ? { firewallKey: key } : {}),
    })),
  });
  assert.deepEqual(chainsOf(many(50)), chainsOf(many(2)));
  assert.equal(chainsOf(many(50)).length, 3 + 2, 'three hooks and one chain pair');
  const small = renderRuleset(many(2)).split('\n').length;
  assert.equal(renderRuleset(many(50)).split('\n').length, small, 'more NICs add elements on the same lines, no lines');
  assert.notDeepEqual(chainsOf(many(2, 'default/web')), chainsOf(many(2)), 'a key names the chains instead of their content');
});

test('one firewall key with two different rule lists is refused', () => {
  const a: NicRules = { ...nic, firewallKey: 'web' };
  const b: NicRules = { ...nic, tap: 't2', mac: '52:54:00:00:00:02', ipv4: ['10.0.0.3'], firewallKey: 'web', geekMode: true };
  assert.throws(() => renderRuleset({ networks: [{ bridge: 'b1' }], nics: [a, b] }), /Cannot render NIC "t2": firewall key "web" has other rules than on NIC "t1"/);
});

test('two NICs may not claim one address on a bridge, but may on different bridges', () => {
  const networks = [{ bridge: 'b1' }, { bridge: 'b2' }];
  const twin = { ...nic, tap: 't2', mac: '52:54:00:00:00:02' };
  assert.throws(() => renderRuleset({ networks, nics: [nic, twin] }), /Cannot render NIC "t2": address "10.0.0.2" on bridge "b1" is also NIC "t1"'s/);
  assert.doesNotThrow(() => renderRuleset({ networks, nics: [nic, { ...twin, bridge: 'b2' }] }));
  assert.throws(() => renderRuleset({ networks, nics: [nic, { ...twin, mac: nic.mac, bridge: 'b2' }] }), /MAC "52:54:00:00:00:01" is also NIC "t1"'s/);
});

test('bad networks and sets are refused', () => {
  assert.throws(() => renderRuleset({ networks: [{ bridge: 'b1', natSubnet: 'fd00::/64' }], nics: [] }), /NAT subnet "fd00::\/64" is not an IPv4 CIDR/);
  assert.throws(() => renderRuleset({ networks: [{ bridge: 'b1', vxlan: 'b1' }], nics: [] }), /interface "b1" is used twice/);
  assert.throws(() => renderRuleset({ networks: [], nics: [], sets: [{ name: 'Web', addresses: [] }] }), /member set "Web": not a DNS label/);
  assert.throws(() => renderRuleset({ networks: [], nics: [], sets: [{ name: 'w', addresses: ['x'] }] }), /"x" is not an address or CIDR/);
});
