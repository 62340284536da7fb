import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostNetworkView } from '../api/kinds/network.ts';
import type { AnyObject } from '../api/object.ts';
import { renderDnsmasq } from '../net/dnsmasq-config.ts';
import { planLinks } from '../net/link-plan.ts';
import { renderRuleset } from '../net/nft-ruleset.ts';
import { desiredHostNetwork, memberSetName, tapName } from './host-network.ts';

const opts = { underlayIp: '192.0.2.1', dnsmasqRunDir: '/run/crowd/dnsmasq', tapOwner: 64055 };

const vm = (id: string, name: string, nics: unknown[], addresses?: unknown[], extra: Record<string, unknown> = {}): AnyObject =>
  ({ id, name, kind: 'vm', project: 'default', spec: { image: 'i', machineType: 'm', nics }, status: { node: 'a', ...(addresses ? { addresses } : {}), ...extra } }) as unknown as AnyObject;

const view = (over: Partial<HostNetworkView> = {}): HostNetworkView => ({
  networks: [
    { project: 'default', name: 'dmz', vni: 42, peers: ['192.0.2.1', '192.0.2.2'], spec: { ipv4: { subnet: '10.9.0.0/24', dns: ['9.9.9.9'] }, firewalls: ['web'] } },
    { project: 'default', name: 'routed', vni: 7, peers: [], spec: { ipv4: { subnet: '10.7.0.0/24' }, gateway: { mode: 'vm', vm: 'router' }, mtu: 1400 } },
  ],
  firewalls: [
    { project: 'default', name: 'web', spec: { rules: [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['80'], remote: { firewall: 'admins' }, log: true }] } },
    { project: 'default', name: 'ssh', spec: { rules: [], geekMode: true } },
  ],
  members: [{ project: 'default', firewall: 'admins', addresses: ['10.9.0.3'] }],
  ...over,
});

const web = vm('vm_1', 'web', [{ network: 'dmz', firewalls: ['ssh'], rateLimit: { egressMbit: 100 } }], [{ nic: 0, mac: '52:54:00:00:00:01', ipv4: '10.9.0.2' }]);
const router = vm('vm_2', 'router', [{ network: 'routed' }, { network: 'dmz' }], [
  { nic: 0, mac: '52:54:00:00:00:02', ipv4: '10.7.0.1' },
  { nic: 1, mac: '52:54:00:00:00:03', ipv4: '10.9.0.4' },
]);

/** Every layer of src/net accepts what the agent derives (its checks run before anything changes a host). */
function assertRenders(spec: ReturnType<typeof desiredHostNetwork>['spec']): void {
  renderRuleset(spec.ruleset);
  planLinks(spec.links, { links: new Map(), floods: new Map(), ipv4Forwarding: false });
  for (const d of spec.dnsmasq) renderDnsmasq(d);
}

test('tap names are stable, unique per NIC and fit in 15 characters', () => {
  assert.equal(tapName('vm_1', 0), tapName('vm_1', 0));
  assert.notEqual(tapName('vm_1', 0), tapName('vm_1', 1));
  assert.ok(tapName('vm_01JABCDEFGHJKMNPQRSTVWXYZ0', 15).length <= 15);
  assert.match(memberSetName('default', 'admins'), /^fw-[0-9a-f]{16}$/);
});

test('VMs on two networks get a bridge, VXLAN to the other hosts, taps, rules and static leases', () => {
  const { spec, nics, problems } = desiredHostNetwork([router, web], view(), opts);
  assert.equal(problems.size, 0);
  assertRenders(spec);
  assert.deepEqual(nics.get('vm_1'), [{ tap: tapName('vm_1', 0), mac: '52:54:00:00:00:01' }]);
  assert.deepEqual(spec.links.map((l) => [l.network, l.bridge, l.mtu, l.addresses, l.vxlan?.remotes, l.routed, l.ports.map((p) => p.name)]), [
    ['n42', 'cb42', 1450, ['10.9.0.1/24', '169.254.169.254/32', 'fe80::a9fe:a9fe/64'], ['192.0.2.2'], true, [tapName('vm_1', 0), tapName('vm_2', 1)]],
    ['n7', 'cb7', 1400, ['10.7.0.254/24', '169.254.169.254/32', 'fe80::a9fe:a9fe/64'], [], undefined, [tapName('vm_2', 0)]],
  ]);
  assert.deepEqual(spec.ruleset.networks, [{ bridge: 'cb42', vxlan: 'cx42', natSubnet: '10.9.0.0/24' }, { bridge: 'cb7', vxlan: 'cx7' }]);
  const webNic = spec.ruleset.nics.find((n) => n.tap === tapName('vm_1', 0))!;
  assert.equal(webNic.geekMode, true);
  assert.deepEqual(webNic.rules, [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['80'], remote: { set: memberSetName('default', 'admins') }, logPrefix: 'crowd web: ' }]);
  assert.equal(spec.ruleset.nics.find((n) => n.tap === tapName('vm_2', 0))!.router, true);
  assert.equal(webNic.firewallKey, 'default/web,ssh', 'NICs with the same firewalls share chains');
  assert.deepEqual(spec.ruleset.sets, [{ name: memberSetName('default', 'admins'), addresses: ['10.9.0.3'] }]);
  assert.deepEqual(spec.bandwidth.find((b) => b.tap === tapName('vm_1', 0)), { tap: tapName('vm_1', 0), egressMbit: 100 });
  assert.deepEqual(spec.dnsmasq.map((d) => [d.network, d.ipv4?.router, d.ipv4?.dns, d.hosts.map((h) => h.ipv4), d.staticOnly]), [
    ['n42', '10.9.0.1', ['9.9.9.9'], ['10.9.0.2', '10.9.0.4'], true],
    ['n7', '10.7.0.1', undefined, ['10.7.0.1'], true],
  ]);
});

test('a VM whose NICs are not ready is held with the reason, and gets no tap', () => {
  const dry = vm('vm_3', 'dry', [{ network: 'dmz' }], undefined, { conditions: [{ type: 'Addressed', status: 'false', message: 'the address pool of network "dmz" is exhausted' }] });
  const cases: [AnyObject, HostNetworkView | undefined, RegExp][] = [
    [web, undefined, /waiting for the network view/],
    [dry, view(), /pool of network "dmz" is exhausted/],
    [vm('vm_4', 'x', [{ network: 'dmz' }]), view(), /waiting for the server to assign addresses to NIC 0/],
    [vm('vm_5', 'y', [{ network: 'nope' }], [{ nic: 0, mac: '52:54:00:00:00:09' }]), view(), /network "nope" is not known/],
    [web, view({ networks: [{ ...view().networks[0]!, vni: undefined }] }), /has no VNI yet/],
  ];
  for (const [v, vw, why] of cases) {
    const out = desiredHostNetwork([v], vw, opts);
    assert.match(out.problems.get(v.id) ?? '', why);
    assert.equal(out.nics.has(v.id), false);
    assert.deepEqual(out.spec.links, []);
  }
});

test('the last VM of a network leaving removes the network; a firewall change touches only the ruleset', () => {
  const both = desiredHostNetwork([router, web], view(), opts).spec;
  const one = desiredHostNetwork([web], view(), opts).spec;
  assert.deepEqual(one.links.map((l) => l.network), ['n42']);
  assert.deepEqual(one.dnsmasq.map((d) => d.network), ['n42']);
  assert.deepEqual(desiredHostNetwork([], view(), opts).spec.links, []);
  const changed = desiredHostNetwork([router, web], view({ firewalls: [] }), opts).spec;
  assert.deepEqual(changed.links, both.links);
  assert.deepEqual(changed.dnsmasq, both.dnsmasq);
  assert.notDeepEqual(changed.ruleset, both.ruleset);
  assert.deepEqual(changed.ruleset.nics.map((n) => n.rules), [[], [], []]);
});

test('without an underlay address networks stay on this host', () => {
  const { spec } = desiredHostNetwork([web], view(), { dnsmasqRunDir: '/run/x' });
  assert.equal(spec.links[0]!.vxlan, undefined);
  assert.equal(spec.links[0]!.mtu, undefined);
  assertRenders(spec);
});
