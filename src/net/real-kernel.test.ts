import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { missingRoot, missingTools } from '../base/require-tool.ts';
import { ExecRunner, type Runner } from '../base/runner.ts';
import { applyLinks } from './apply-links.ts';
import { applyRuleset, RulesetApplier } from './apply-ruleset.ts';
import { applyTc } from './apply-tc.ts';
import type { DnsmasqOptions } from './dnsmasq-config.ts';
import { applyDnsmasq, stopDnsmasq } from './dnsmasq-process.ts';
import type { FirewallRuleSpec } from './firewall-rule.ts';
import { applyHostNetwork, type HostNetworkSpec } from './host-network.ts';
import { runHostSteps } from './host-step.ts';
import { planLinks, type NetworkLinks } from './link-plan.ts';
import { readLinkState } from './link-state.ts';
import { eui64Address } from './ip-address.ts';
import { NamespacedRunner } from './namespaced-runner.ts';
import { buildRuleset, renderRuleset, type NicRules, type RulesetOptions } from './nft-ruleset.ts';
import { richRuleset } from './nft-ruleset.fixture.ts';

const skip = missingRoot() ?? missingTools('ip', 'nft', 'dnsmasq', 'bridge', 'tc', 'sysctl', 'busybox', 'socat');
const root = new ExecRunner();
const tag = `cn${process.pid}`;

/** Namespaces created so far; every one is deleted in the end, which takes its links with it. */
class Namespaces {
  readonly names: string[] = [];
  async add(suffix: string): Promise<Runner> {
    const name = `${tag}${suffix}`;
    await root.run({ argv: ['ip', 'netns', 'add', name] });
    this.names.push(name);
    const r = new NamespacedRunner(root, name);
    await r.run({ argv: ['ip', 'link', 'set', 'lo', 'up'] });
    return r;
  }
  async removeAll(): Promise<void> {
    for (const n of this.names.reverse()) await root.run({ argv: ['ip', 'netns', 'del', n] }).catch(() => {});
  }
}

/** Resolves once `check` holds; fails after 20 s (addresses from RAs arrive when they arrive). */
async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what}`);
    await delay(200);
  }
}

/** True when the command exits 0. */
async function succeeds(r: Runner, argv: string[]): Promise<boolean> {
  return r.run({ argv, timeoutMs: 20_000 }).then(
    () => true,
    () => false,
  );
}

/** Starts a socat TCP server in a namespace answering `answer`, and resolves once it listens. */
function listen(ns: string, port: number, children: ChildProcess[], answer = 'hello', bind?: string): Promise<void> {
  const address = bind ? `,bind=${bind}` : '';
  const child = spawn('ip', ['netns', 'exec', ns, 'socat', '-d', '-d', `TCP-LISTEN:${port},reuseaddr,fork${address}`, `SYSTEM:echo ${answer}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`socat did not listen: ${err}`)), 10_000);
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      if (/listening on/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`socat exited with ${code}: ${err}`)));
  });
}

test('the rich golden ruleset loads into a real nftables, twice', { skip }, async () => {
  const ns = new Namespaces();
  try {
    const host = await ns.add('n');
    await applyRuleset(host, renderRuleset(richRuleset));
    await applyRuleset(host, renderRuleset(richRuleset));
    const { stdout } = await host.run({ argv: ['nft', 'list', 'tables'] });
    assert.deepEqual(stdout.trim().split('\n'), ['table bridge crowd', 'table inet crowd']);
  } finally {
    await ns.removeAll();
  }
});

/**
 * `nft list table` of both crowd tables, as a comparable text: objects sorted by name and each set's
 * elements in one order (the kernel lists objects and hash-set elements in the order they were added).
 */
async function listed(r: Runner): Promise<string> {
  const out: string[] = [];
  for (const family of ['bridge', 'inet']) {
    const text = (await r.run({ argv: ['nft', 'list', 'table', family, 'crowd'] })).stdout;
    const objects = (text.match(/^\t(?:set|map|chain) \S+ \{\n[\s\S]*?^\t\}$/gm) ?? []).map((o) =>
      o.replace(/elements = \{([^}]*)\}/g, (_, xs: string) => `elements = { ${xs.split(',').map((x) => x.trim()).sort().join(', ')} }`),
    );
    out.push(`table ${family} crowd`, ...objects.sort());
  }
  return out.join('\n');
}

test('every kind of change applied as a delta leaves exactly the kernel ruleset a full apply leaves', { skip }, async () => {
  const ns = new Namespaces();
  try {
    const [delta, full] = [await ns.add('d'), await ns.add('f')];
    const applier = new RulesetApplier();
    const web = (port: string): FirewallRuleSpec[] => [
      { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: [port], remote: { set: 'web' } },
      { direction: 'ingress', action: 'accept', protocol: 'icmp', rateLimit: { rate: 5, per: 'second', unit: 'packets' } },
    ];
    const nic = (i: number, rules: FirewallRuleSpec[], key: string, bridge = 'crbr1'): NicRules => ({
      tap: `crnic${i}`, bridge, mac: `52:54:00:00:10:0${i}`, ipv4: [`10.0.${bridge === 'crbr1' ? 0 : 1}.${i + 10}`], ipv6: [], rules, firewallKey: key,
    });
    const blue = { bridge: 'crbr1', vxlan: 'crvx1' };
    const steps: [string, RulesetOptions][] = [
      ['a firewall edit', { ...richRuleset, nics: [...richRuleset.nics, nic(1, web('443'), 'web'), nic(2, web('443'), 'web')] }],
      ['another edit', { ...richRuleset, nics: [...richRuleset.nics, nic(1, web('8443'), 'web'), nic(2, web('8443'), 'web')] }],
      ['a NIC and a network arriving', { ...richRuleset, networks: [...richRuleset.networks, { bridge: 'crbr3' }], nics: [...richRuleset.nics, nic(1, web('8443'), 'web'), nic(2, web('8443'), 'web'), nic(3, [], 'none', 'crbr3')] }],
      ['member set changes', { ...richRuleset, sets: [{ name: 'web', addresses: ['10.0.0.7', 'fd00::7'] }, { name: 'empty-one', addresses: ['192.0.2.0/24'] }], nics: [...richRuleset.nics, nic(1, web('8443'), 'web')] }],
      ['a firewall and NICs leaving', { networks: [blue], nics: [nic(1, [], 'none')] }],
    ];
    await applier.apply(delta, buildRuleset(richRuleset));
    for (const [what, opts] of steps) {
      assert.equal(await applier.apply(delta, buildRuleset(opts)), 'delta', what);
      await applyRuleset(full, renderRuleset(opts));
      assert.equal(await listed(delta), await listed(full), what);
    }
  } finally {
    await ns.removeAll();
  }
});

test('a link change failing half-way leaves the host as it was', { skip }, async () => {
  const ns = new Namespaces();
  try {
    const host = await ns.add('r');
    const broken: NetworkLinks = {
      network: 'red',
      bridge: 'crbr9',
      addresses: ['10.78.0.1/24'],
      vxlan: { name: 'crvx9', vni: 9, local: '192.0.2.9', remotes: [], underlay: 'nosuch0' },
      ports: [],
    };
    await assert.rejects(applyLinks(host, [broken]), /ip link add name crvx9 .* failed/);
    const { stdout } = await host.run({ argv: ['ip', '-j', 'link', 'show'] });
    assert.deepEqual((JSON.parse(stdout) as { ifname: string }[]).map((l) => l.ifname), ['lo']);
  } finally {
    await ns.removeAll();
  }
});

test('an ip batch failing at a line leaves the host as it was', { skip }, async () => {
  const ns = new Namespaces();
  try {
    const host = await ns.add('s');
    const bridge = (n: string) => ({ argv: ['ip', 'link', 'add', n, 'type', 'bridge'], undo: [['ip', 'link', 'del', n]] });
    await assert.rejects(runHostSteps(host, [bridge('crbra'), bridge('crbrb'), bridge('crbra'), bridge('crbrc')]), /"ip link add crbra type bridge" failed .*File exists/);
    const { stdout } = await host.run({ argv: ['ip', '-j', 'link', 'show'] });
    assert.deepEqual((JSON.parse(stdout) as { ifname: string }[]).map((l) => l.ifname), ['lo']);
  } finally {
    await ns.removeAll();
  }
});

test('two hosts joined by a WAN carry one network over VXLAN with DHCP, firewalls and anti-spoofing', { skip, timeout: 180_000 }, async () => {
  const ns = new Namespaces();
  const children: ChildProcess[] = [];
  const runDir = mkdtempSync(join(tmpdir(), `${tag}-`));
  chmodSync(runDir, 0o755);
  const dnsmasqDirs = [join(runDir, 'a'), join(runDir, 'b')];
  try {
    // Hosts and the WAN between them.
    const [a, b] = [await ns.add('a'), await ns.add('b')];
    await a.run({ argv: ['ip', 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'wan', 'netns', `${tag}b`] });
    for (const [h, ip] of [[a, '192.0.2.1/24'], [b, '192.0.2.2/24']] as const) {
      await h.run({ argv: ['ip', 'addr', 'add', ip, 'dev', 'wan'] });
      await h.run({ argv: ['ip', 'link', 'set', 'wan', 'up'] });
    }
    // Guests: a namespace each, plugged into its host by a veth.
    const guests = [
      { host: a, ns: `${tag}g1`, port: 'g1', mac: '52:54:00:77:00:01', ip: '10.77.0.11' },
      { host: b, ns: `${tag}g2`, port: 'g2', mac: '52:54:00:77:00:02', ip: '10.77.0.12' },
      { host: a, ns: `${tag}g3`, port: 'g3', mac: '52:54:00:78:00:03', ip: '10.78.0.13' },
    ];
    const [g1, g2, g3] = [await ns.add('g1'), await ns.add('g2'), await ns.add('g3')];
    for (const g of guests) {
      await g.host.run({ argv: ['ip', 'link', 'add', g.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', g.ns] });
      const guest = new NamespacedRunner(root, g.ns);
      await guest.run({ argv: ['ip', 'link', 'set', 'eth0', 'address', g.mac] });
      await guest.run({ argv: ['sysctl', '-qw', 'net.ipv6.conf.eth0.accept_dad=0'] });
      await guest.run({ argv: ['ip', 'link', 'set', 'eth0', 'up'] });
    }

    // Only host a serves metadata here, so host b's guest could only reach a's service over the overlay.
    const links = (local: string, remote: string, port: string): NetworkLinks => ({
      network: 'blue',
      bridge: 'crbr1',
      mtu: 1450,
      addresses: ['10.77.0.1/24', 'fd77::1/64', ...(port === 'g1' ? ['169.254.169.254/32', 'fe80::a9fe:a9fe/64'] : [])],
      vxlan: { name: 'crvx1', vni: 77, local, remotes: [remote] },
      ports: [{ kind: 'existing', name: port }],
      routed: port === 'g1',
    });
    const nic = (g: (typeof guests)[number], rules: FirewallRuleSpec[]): NicRules => ({
      tap: g.port, bridge: 'crbr1', mac: g.mac, ipv4: [g.ip], ipv6: [eui64Address('fd77::/64', g.mac)], rules,
    });
    // Host a is the gateway of the segment and masquerades it; host b only bridges.
    // Host a also has a second network, "red", with guest g3 (static address).
    const red: NetworkLinks = { network: 'red', bridge: 'crbr2', addresses: ['10.78.0.1/24'], ports: [{ kind: 'existing', name: 'g3' }], routed: true };
    const g3Nic = (): NicRules => ({ tap: 'g3', bridge: 'crbr2', mac: guests[2]!.mac, ipv4: [guests[2]!.ip], ipv6: [], rules: [icmp] });
    const rulesetOptions = (g: (typeof guests)[number], rules: FirewallRuleSpec[]): RulesetOptions =>
      g === guests[0]
        ? { networks: [{ bridge: 'crbr1', vxlan: 'crvx1', natSubnet: '10.77.0.0/24' }, { bridge: 'crbr2' }], nics: [nic(g, rules), g3Nic()] }
        : { networks: [{ bridge: 'crbr1', vxlan: 'crvx1' }], nics: [nic(g, rules)] };
    const ruleset = (g: (typeof guests)[number], rules: FirewallRuleSpec[]) => renderRuleset(rulesetOptions(g, rules));
    // Host b keeps what it applied, so its firewall changes below go to the kernel as deltas.
    const rulesetB = new RulesetApplier();
    const changeB = async (rules: FirewallRuleSpec[]) => assert.equal(await rulesetB.apply(b, buildRuleset(rulesetOptions(guests[1]!, rules))), 'delta');
    const icmp: FirewallRuleSpec = { direction: 'ingress', action: 'accept', protocol: 'icmp' };
    const echo6: FirewallRuleSpec = { direction: 'ingress', action: 'accept', protocol: 'icmpv6', icmpTypes: [128] };
    const dhcp = (dir: string, g: (typeof guests)[number]): DnsmasqOptions => ({
      network: 'blue', bridge: 'crbr1', runDir: dir, mtu: 1450,
      ipv4: { subnet: '10.77.0.0/24', router: '10.77.0.1' }, ipv6: { mode: 'slaac', prefix: 'fd77::/64', router: g === guests[0] },
      hosts: [{ mac: g.mac, ipv4: g.ip }], staticOnly: true,
    });

    // Links: applied once they change the host, applied again they change nothing.
    assert.ok((await applyLinks(a, [links('192.0.2.1', '192.0.2.2', 'g1'), red])) > 0);
    assert.deepEqual(planLinks([links('192.0.2.1', '192.0.2.2', 'g1'), red], await readLinkState(a)), []);
    const tcp8080: FirewallRuleSpec = { direction: 'ingress', action: 'reject', protocol: 'tcp', ports: ['8080'] };
    // Host b converges every layer in one call; a second call finds nothing to do.
    const hostB: HostNetworkSpec = {
      links: [links('192.0.2.2', '192.0.2.1', 'g2')],
      ruleset: rulesetOptions(guests[1]!, [icmp, echo6, tcp8080]),
      bandwidth: [{ tap: 'g2' }],
      dnsmasq: [dhcp(dnsmasqDirs[1]!, guests[1]!)],
      dnsmasqRunDir: dnsmasqDirs[1]!,
    };
    assert.deepEqual((await applyHostNetwork(hostB, { runner: b, ruleset: rulesetB })).dnsmasq, { blue: 'started' });
    assert.deepEqual(await applyHostNetwork(hostB, { runner: b, ruleset: rulesetB }), { ruleset: 'full', linkChanges: 0, tcChanges: 0, dnsmasq: { blue: 'unchanged' } });
    const fdb = await b.run({ argv: ['bridge', 'fdb', 'show', 'dev', 'crvx1'] });
    assert.match(fdb.stdout, /00:00:00:00:00:00 dst 192\.0\.2\.1 self permanent/);

    // Host a layer by layer: firewall, then DHCP from its own dnsmasq.
    await applyRuleset(a, ruleset(guests[0]!, [icmp]));
    assert.equal(await applyDnsmasq(dhcp(dnsmasqDirs[0]!, guests[0]!), { runner: a }), 'started');
    assert.equal(await applyDnsmasq(dhcp(dnsmasqDirs[0]!, guests[0]!), { runner: a }), 'unchanged');
    const script = join(runDir, 'udhcpc.sh');
    writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && ip addr add "$ip/$subnet" dev "$interface" && ip route add default via "$router"\nexit 0\n');
    chmodSync(script, 0o755);
    for (const g of [g1, g2]) await g.run({ argv: ['busybox', 'udhcpc', '-i', 'eth0', '-q', '-n', '-t', '5', '-T', '1', '-s', script], timeoutMs: 30_000 });
    const addr = await g1.run({ argv: ['ip', '-j', 'addr', 'show', 'eth0'] });
    assert.match(addr.stdout, /"local":"10\.77\.0\.11","prefixlen":24/);

    // Guests on different hosts reach each other over VXLAN.
    assert.ok(await succeeds(g1, ['busybox', 'ping', '-c', '2', '-W', '3', '10.77.0.12']), 'g1 pings g2 over VXLAN');
    assert.ok(await succeeds(g1, ['busybox', 'ping', '-6', '-c', '2', '-W', '3', '-I', 'eth0', 'fe80::5054:ff:fe77:2']), 'and over IPv6 link-local');
    // SLAAC from each host's router advertisements, then IPv6 across the overlay.
    for (const [g, mac] of [[g1, guests[0]!.mac], [g2, guests[1]!.mac]] as const) {
      const want = `"local":"${eui64Address('fd77::/64', mac)}"`;
      await waitFor(`a SLAAC address on ${mac}`, async () => (await g.run({ argv: ['ip', '-j', '-6', 'addr', 'show', 'dev', 'eth0'] })).stdout.includes(want));
    }
    assert.ok(await succeeds(g1, ['busybox', 'ping', '-6', '-c', '2', '-W', '3', eui64Address('fd77::/64', guests[1]!.mac)]), 'g1 pings g2 at its SLAAC address');

    // The gateway host masquerades the segment towards an address outside it (host b's WAN side).
    assert.ok(await succeeds(g1, ['busybox', 'ping', '-c', '2', '-W', '3', '192.0.2.2']), 'g1 reaches outside the segment through NAT');

    // A firewall rule blocks a TCP port, a re-rendered one allows it; links are not touched.
    await listen(`${tag}g2`, 8080, children);
    const connect = ['socat', '-t', '2', '-', 'TCP:10.77.0.12:8080,connect-timeout=3'];
    assert.equal(await succeeds(g1, connect), false, 'port 8080 is rejected');
    await changeB([icmp, { ...tcp8080, action: 'accept' }]);
    const reply = await g1.run({ argv: connect, timeoutMs: 20_000 });
    assert.equal(reply.stdout.trim(), 'hello');
    assert.deepEqual(planLinks([links('192.0.2.2', '192.0.2.1', 'g2')], await readLinkState(b)), []);

    // Network red serves only approved MACs: g3 gets no lease until its pair is added (a SIGHUP, no restart).
    const redDhcp = (hosts: DnsmasqOptions['hosts']): DnsmasqOptions => ({
      network: 'red', bridge: 'crbr2', runDir: dnsmasqDirs[0]!, ipv4: { subnet: '10.78.0.0/24', router: '10.78.0.1' }, hosts, staticOnly: true,
    });
    const udhcpc = ['busybox', 'udhcpc', '-i', 'eth0', '-q', '-n', '-t', '2', '-T', '1', '-s', script];
    assert.equal(await applyDnsmasq(redDhcp([]), { runner: a }), 'started');
    assert.equal(await succeeds(g3, udhcpc), false, 'an unknown MAC gets no lease');
    assert.equal(await applyDnsmasq(redDhcp([{ mac: guests[2]!.mac, ipv4: guests[2]!.ip }]), { runner: a }), 'reloaded');
    await g3.run({ argv: udhcpc, timeoutMs: 30_000 });

    // Another network is out of reach, although host a routes for both.
    assert.ok(await succeeds(g3, ['busybox', 'ping', '-c', '1', '-W', '3', '10.78.0.1']), 'g3 reaches its own gateway');
    assert.equal(await succeeds(g1, ['busybox', 'ping', '-c', '2', '-W', '2', '10.78.0.13']), false, 'g1 cannot reach g3 on network red');

    // The metadata address reaches only the guest's own host, and replies arrive with TTL 1.
    await listen(`${tag}a`, 80, children, 'meta-a', '169.254.169.254');
    await g1.run({ argv: ['nft', '-f', '-'], input: 'table ip probe {\n\tchain input {\n\t\ttype filter hook input priority 0;\n\t\tip saddr 169.254.169.254 ip ttl 1 counter\n\t}\n}\n' });
    const imds = ['socat', '-t', '2', '-', 'TCP:169.254.169.254:80,connect-timeout=3'];
    for (const g of [g1, g2]) await g.run({ argv: ['ip', 'route', 'add', '169.254.169.254/32', 'dev', 'eth0'] });
    assert.equal((await g1.run({ argv: imds, timeoutMs: 20_000 })).stdout.trim(), 'meta-a');
    assert.match((await g1.run({ argv: ['nft', 'list', 'table', 'ip', 'probe'] })).stdout, /counter packets [1-9]/);
    assert.equal(await succeeds(g2, imds), false, 'a guest on another host cannot reach this host\'s metadata service');

    // A guest that sends from an address or MAC it was not given is dropped on its host.
    await g1.run({ argv: ['ip', 'addr', 'add', '10.77.0.99/24', 'dev', 'eth0'] });
    assert.equal(await succeeds(g1, ['busybox', 'ping', '-c', '2', '-W', '2', '-I', '10.77.0.99', '10.77.0.12']), false, 'spoofed IP is dropped');
    // ARP too: g2 answers (and learns) only a request from g1's own address.
    const arping = (from: string) => ['busybox', 'arping', '-f', '-c', '2', '-w', '3', '-I', 'eth0', '-s', from, '10.77.0.12'];
    assert.ok(await succeeds(g1, arping(guests[0]!.ip)), 'an ARP request from the assigned address is answered');
    assert.equal(await succeeds(g1, arping('10.77.0.99')), false, 'an ARP request from a spoofed address is dropped');
    assert.equal((await g2.run({ argv: ['ip', 'neigh', 'show', '10.77.0.99'] })).stdout.trim(), '', 'and g2 never learnt the spoofed address');
    await g1.run({ argv: ['ip', 'link', 'set', 'eth0', 'address', '52:54:00:77:00:99'] });
    assert.equal(await succeeds(g1, ['busybox', 'ping', '-c', '2', '-W', '2', '10.77.0.12']), false, 'spoofed MAC is dropped');
    await g1.run({ argv: ['ip', 'link', 'set', 'eth0', 'address', guests[0]!.mac] });
    assert.ok(await succeeds(g1, ['busybox', 'ping', '-c', '2', '-W', '3', '10.77.0.12']), 'the real MAC passes again');

    // 5 % loss on the WAN (another table, which re-applying ours leaves alone) does not break the overlay.
    await b.run({
      argv: ['nft', '-f', '-'],
      input: 'table ip loss {\n\tchain output {\n\t\ttype filter hook output priority 0; policy accept;\n\t\toifname "wan" numgen random mod 100 < 5 drop\n\t}\n}\n',
    });
    await changeB([icmp]);
    assert.match((await b.run({ argv: ['nft', 'list', 'tables'] })).stdout, /table ip loss/);
    assert.ok(await succeeds(g1, ['busybox', 'ping', '-c', '20', '-i', '0.2', '-W', '3', '10.77.0.12']), 'pings get through a lossy WAN');

    await b.run({ argv: ['nft', 'delete', 'table', 'ip', 'loss'] });

    // A rate-limited rule lets a burst through and drops the rest of a flood.
    await changeB([{ ...icmp, rateLimit: { rate: 1, per: 'second', unit: 'packets' } }]);
    const flood = await g1.run({ argv: ['busybox', 'ping', '-c', '30', '-i', '0.01', '-W', '2', '10.77.0.12'], timeoutMs: 20_000 }).catch((e: { result: { stdout: string } }) => e.result);
    const received = Number(/(\d+) packets received/.exec(flood.stdout)?.[1]);
    assert.ok(received > 0 && received < 30, `${received} of 30 pings passed a 1/s limit`);

    // Bandwidth limits go on and come off the guest's port.
    assert.ok((await applyTc(a, [{ tap: 'g1', ingressMbit: 10, egressMbit: 5 }])) > 0);
    assert.equal(await applyTc(a, [{ tap: 'g1', ingressMbit: 10, egressMbit: 5 }]), 0);
    await changeB([icmp]);
    assert.ok(await succeeds(g1, ['busybox', 'ping', '-c', '1', '-W', '3', '10.77.0.12']), 'shaped traffic still flows');
    await applyTc(a, [{ tap: 'g1' }]);
    assert.doesNotMatch((await a.run({ argv: ['tc', 'qdisc', 'show', 'dev', 'g1'] })).stdout, /tbf|ingress/);

    // The last NIC leaving takes the network off the host; the foreign veth is only detached.
    await applyLinks(a, []);
    const left = await a.run({ argv: ['ip', '-j', 'link', 'show'] });
    const names = (JSON.parse(left.stdout) as { ifname: string; master?: string }[]).map((l) => `${l.ifname}${l.master ? `@${l.master}` : ''}`);
    assert.deepEqual(names.sort(), ['g1', 'g3', 'lo', 'wan']);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    const served: [string, string][] = [['blue', dnsmasqDirs[0]!], ['blue', dnsmasqDirs[1]!], ['red', dnsmasqDirs[0]!]];
    for (const [network, dir] of served) await stopDnsmasq({ network, runDir: dir }).catch(() => {});
    await ns.removeAll();
    rmSync(runDir, { recursive: true, force: true });
  }
});
