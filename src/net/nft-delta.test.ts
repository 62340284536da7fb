import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rulesetDelta } from './nft-delta.ts';
import { buildRuleset, type NicRules, type RulesetOptions } from './nft-ruleset.ts';

const nic = (i: number, rules: NicRules['rules'], key = 'web'): NicRules => ({
  tap: `t${i}`, bridge: 'b', mac: `52:54:00:00:00:0${i}`, ipv4: [`10.0.0.${i + 1}`], ipv6: [], rules, firewallKey: key,
});
const ssh: NicRules['rules'] = [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['22'] }];
const host = (nics: NicRules[], sets: RulesetOptions['sets'] = []): RulesetOptions => ({ networks: [{ bridge: 'b' }], nics, sets });
const delta = (a: RulesetOptions, b: RulesetOptions) => rulesetDelta(buildRuleset(a), buildRuleset(b));

test('an unchanged ruleset needs no commands', () => {
  assert.equal(delta(host([nic(1, ssh), nic(2, ssh)]), host([nic(2, ssh), nic(1, ssh)])), '');
});

test('a firewall edit flushes and refills only that firewall\'s chain, whatever the number of NICs', () => {
  const nics = (rules: NicRules['rules']) => Array.from({ length: 9 }, (_, i) => nic(i + 1, rules));
  const text = delta(host(nics(ssh)), host(nics([{ ...ssh[0]!, ports: ['2222'] }])))!;
  const lines = text.trim().split('\n');
  assert.match(lines[0]!, /^flush chain inet crowd in_[0-9a-f]{12}$/);
  assert.ok(lines.slice(1).every((l) => l.startsWith(`add rule inet crowd ${lines[0]!.split(' ').pop()} `)), text);
  assert.match(text, /tcp dport 2222 accept\n/);
  assert.doesNotMatch(text, /element|table|bridge crowd/);
});

test('a NIC arriving adds only set and map elements', () => {
  const text = delta(host([nic(1, ssh)]), host([nic(1, ssh), nic(2, ssh)]))!;
  assert.ok(text.trim().split('\n').every((l) => l.startsWith('add element ')), text);
  assert.match(text, /^add element inet crowd ingress_v4 \{ "b" \. 10\.0\.0\.3 : jump in_[0-9a-f]{12} \}$/m);
  assert.match(text, /^add element bridge crowd macs \{ "t2" \. 52:54:00:00:00:02 \}$/m);
});

test('a firewall going away is deleted after the elements and rules that refer to it', () => {
  const text = delta(host([nic(1, ssh), nic(2, [], 'none')]), host([nic(1, ssh)]))!;
  const lines = text.trim().split('\n');
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
  assert.ok(at(/^delete element inet crowd ingress_v4 \{ "b" \. 10\.0\.0\.3 \}$/) >= 0, text);
  assert.ok(at(/^delete element inet crowd ingress_v4/) < at(/^flush chain inet crowd in_/), text);
  assert.ok(at(/^flush chain inet crowd in_/) < at(/^delete chain inet crowd in_/), text);
});

test('new chains and sets exist before the rules and elements that use them', () => {
  const limited: NicRules['rules'] = [{ ...ssh[0]!, rateLimit: { rate: 3, per: 'second', unit: 'connections' } }];
  const text = delta(host([nic(1, ssh)]), host([nic(1, ssh), nic(2, limited, 'slow')]))!;
  const lines = text.trim().split('\n');
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
  assert.ok(at(/^add chain inet crowd in_/) < at(/^add set inet crowd l_/), text);
  assert.ok(at(/^add set inet crowd l_/) < at(/^add rule inet crowd in_.* update @l_/), text);
  assert.ok(at(/^add chain inet crowd in_/) < at(/^add element inet crowd ingress_v4/), text);
});

test('member set changes are element changes; a removed set goes after the rules using it', () => {
  const web = (addresses: string[]) => [{ name: 'web', addresses }];
  const rules: NicRules['rules'] = [{ direction: 'ingress', action: 'accept', remote: { set: 'web' } }];
  assert.equal(delta(host([nic(1, rules)], web(['10.0.9.1'])), host([nic(1, rules)], web(['10.0.9.2']))),
    'delete element inet crowd m_web_v4 { 10.0.9.1 }\nadd element inet crowd m_web_v4 { 10.0.9.2 }\n');
  const text = delta(host([nic(1, rules)], web([])), host([nic(1, ssh)]))!;
  assert.ok(text.indexOf('flush chain') < text.indexOf('delete set inet crowd m_web_v4'), text);
});

test('a structural change (a hook or a set type) needs the whole tables replaced', () => {
  const a = buildRuleset(host([nic(1, ssh)]));
  const b = structuredClone(a);
  b[1]!.objects.find((o) => o.name === 'forward')!.head = 'type filter hook forward priority 10; policy accept;';
  assert.equal(rulesetDelta(a, b), undefined);
  const c = structuredClone(a);
  c[0]!.objects.find((o) => o.name === 'taps')!.head = 'type ifname; flags interval;';
  assert.equal(rulesetDelta(a, c), undefined);
  assert.equal(rulesetDelta(a, a.slice(1)), undefined);
});
