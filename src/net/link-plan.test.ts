import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planLinks, type NetworkLinks } from './link-plan.ts';
import type { LinkInfo, LinkState } from './link-state.ts';

const net: NetworkLinks = {
  network: 'blue',
  bridge: 'crbr1',
  mtu: 1450,
  addresses: ['10.0.0.1/24'],
  vxlan: { name: 'crvx1', vni: 42, local: '192.0.2.1', remotes: ['192.0.2.3', '192.0.2.2', '192.0.2.1'] },
  ports: [{ kind: 'tap', name: 'crtap1', owner: 1000 }, { kind: 'existing', name: 'veth-g1' }],
};

const lines = (steps: { argv: string[] }[]) => steps.map((s) => s.argv.join(' '));
const empty = (): LinkState => ({ links: new Map(), floods: new Map(), ipv4Forwarding: false });
const bridgeData = { stpState: 0, forwardDelay: 0, nfCallIptables: 1, nfCallIp6tables: 1 };

function synced(): LinkState {
  const l = (x: Partial<LinkInfo> & { name: string }): [string, LinkInfo] => [x.name, { kind: '', mtu: 1450, up: true, addresses: [], ...x }];
  return {
    links: new Map([
      l({ name: 'crbr1', kind: 'bridge', alias: 'crowd:bridge:blue', addresses: ['10.0.0.1/24'], bridge: bridgeData }),
      l({ name: 'crvx1', kind: 'vxlan', alias: 'crowd:vxlan:blue', master: 'crbr1', vxlan: { vni: 42, local: '192.0.2.1', port: 4789, learning: false } }),
      l({ name: 'crtap1', kind: 'tun', alias: 'crowd:tap:blue', master: 'crbr1', tapOwner: 1000 }),
      l({ name: 'veth-g1', kind: 'veth', master: 'crbr1' }),
      l({ name: 'eth0', kind: '', mtu: 1500, addresses: ['192.0.2.1/24'] }),
    ]),
    floods: new Map([['crvx1', ['192.0.2.2', '192.0.2.3']]]),
    ipv4Forwarding: false,
  };
}

test('an empty host gets bridge, VXLAN with head-end replication, and ports', () => {
  const state = empty();
  state.links.set('veth-g1', { name: 'veth-g1', kind: 'veth', mtu: 1500, up: false, addresses: [] });
  assert.deepEqual(lines(planLinks([net], state)), [
    'ip link add name crbr1 mtu 1450 type bridge stp_state 0 forward_delay 0 nf_call_iptables 1 nf_call_ip6tables 1',
    'ip link set dev crbr1 alias crowd:bridge:blue',
    'sysctl -qw net/ipv6/conf/crbr1/accept_ra=0',
    'ip link set dev crbr1 up',
    'ip addr add 10.0.0.1/24 dev crbr1',
    'ip link add name crvx1 mtu 1450 type vxlan id 42 local 192.0.2.1 dstport 4789 nolearning',
    'ip link set dev crvx1 alias crowd:vxlan:blue',
    'ip link set dev crvx1 master crbr1',
    'ip link set dev crvx1 up',
    'bridge fdb append 00:00:00:00:00:00 dev crvx1 dst 192.0.2.2',
    'bridge fdb append 00:00:00:00:00:00 dev crvx1 dst 192.0.2.3',
    'ip tuntap add dev crtap1 mode tap user 1000',
    'ip link set dev crtap1 alias crowd:tap:blue',
    'ip link set dev crtap1 mtu 1450',
    'ip link set dev crtap1 master crbr1',
    'ip link set dev crtap1 up',
    'ip link set dev veth-g1 mtu 1450',
    'ip link set dev veth-g1 master crbr1',
    'ip link set dev veth-g1 up',
  ]);
});

test('a host that already matches needs no step', () => {
  assert.deepEqual(planLinks([net], synced()), []);
});

test('link-local addresses are managed only when asked for', () => {
  const state = synced();
  state.links.get('crbr1')!.addresses.push('fe80::8c1:2ff:fe3:405/64');
  assert.deepEqual(planLinks([net], state), []);
  const want = { ...net, addresses: [...net.addresses!, 'fe80::a9fe:a9fe/64'] };
  assert.deepEqual(lines(planLinks([want], state)), ['ip addr add fe80::a9fe:a9fe/64 dev crbr1 nodad']);
  state.links.get('crbr1')!.addresses.push('fe80::a9fe:a9fe/64');
  assert.deepEqual(planLinks([want], state), []);
});

test('a routed network turns IPv4 forwarding on once', () => {
  const steps = planLinks([{ ...net, routed: true }], synced());
  assert.deepEqual(steps, [{ argv: ['sysctl', '-w', 'net.ipv4.ip_forward=1'], undo: [['sysctl', '-w', 'net.ipv4.ip_forward=0']] }]);
  assert.deepEqual(planLinks([{ ...net, routed: true }], { ...synced(), ipv4Forwarding: true }), []);
});

test('flood entries follow the remote list exactly: new ones added, stale ones removed', () => {
  const want = { ...net, vxlan: { ...net.vxlan!, remotes: ['192.0.2.3', '192.0.2.9'] } };
  const steps = planLinks([want], synced());
  assert.deepEqual(lines(steps), [
    'bridge fdb append 00:00:00:00:00:00 dev crvx1 dst 192.0.2.9',
    'bridge fdb del 00:00:00:00:00:00 dev crvx1 dst 192.0.2.2',
  ]);
  assert.deepEqual(steps[1]!.undo, [['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'crvx1', 'dst', '192.0.2.2']]);
});

test('a VXLAN device with the wrong VNI or with learning is recreated', () => {
  const state = synced();
  state.links.get('crvx1')!.vxlan = { vni: 7, local: '192.0.2.1', port: 4789, learning: true };
  assert.deepEqual(lines(planLinks([net], state)).slice(0, 3), [
    'ip link del crvx1',
    'ip link add name crvx1 mtu 1450 type vxlan id 42 local 192.0.2.1 dstport 4789 nolearning',
    'ip link set dev crvx1 alias crowd:vxlan:blue',
  ]);
});

test('a NIC that left is removed and a foreign port only detached', () => {
  const steps = planLinks([{ ...net, ports: [] }], synced());
  assert.deepEqual(lines(steps), ['ip link del crtap1', 'ip link set dev veth-g1 nomaster']);
});

test('the last NIC leaving removes the whole network from the host', () => {
  assert.deepEqual(lines(planLinks([], synced())), ['ip link del crtap1', 'ip link del crvx1', 'ip link set dev veth-g1 nomaster', 'ip link del crbr1']);
});

test('drifted settings are put back with undo steps that restore them', () => {
  const state = synced();
  const br = state.links.get('crbr1')!;
  br.mtu = 1500;
  br.up = false;
  br.addresses = ['10.9.9.9/8'];
  br.bridge = { ...bridgeData, stpState: 1 };
  state.links.get('crtap1')!.master = undefined;
  const steps = planLinks([net], state);
  assert.deepEqual(lines(steps), [
    'ip link set dev crbr1 type bridge stp_state 0 forward_delay 0 nf_call_iptables 1 nf_call_ip6tables 1',
    'ip link set dev crbr1 mtu 1450',
    'ip link set dev crbr1 up',
    'ip addr add 10.0.0.1/24 dev crbr1',
    'ip addr del 10.9.9.9/8 dev crbr1',
    'ip link set dev crtap1 master crbr1',
  ]);
  assert.deepEqual(steps[1]!.undo, [['ip', 'link', 'set', 'dev', 'crbr1', 'mtu', '1500']]);
  assert.deepEqual(steps[5]!.undo, [['ip', 'link', 'set', 'dev', 'crtap1', 'nomaster']]);
});

test('a tap with another owner is recreated for the new owner', () => {
  const state = synced();
  state.links.get('crtap1')!.tapOwner = 0;
  assert.deepEqual(lines(planLinks([net], state)).slice(0, 2), ['ip link del crtap1', 'ip tuntap add dev crtap1 mode tap user 1000']);
});

test('interfaces crowdcloud does not own are never taken over', () => {
  const state = synced();
  state.links.get('crbr1')!.alias = undefined;
  assert.throws(() => planLinks([net], state), /Cannot use bridge "crbr1": an interface of that name exists and is not crowdcloud's/);
  const other = synced();
  other.links.set('eth1', { name: 'eth1', kind: 'bridge', mtu: 1500, up: true, addresses: [] });
  assert.deepEqual(planLinks([net], other), []);
});

test('bad input is refused before any step is planned', () => {
  const bad: [Partial<NetworkLinks>, RegExp][] = [
    [{ bridge: 'a-name-that-is-too-long' }, /Cannot plan bridge "a-name-that-is-too-long": not a valid interface name/],
    [{ mtu: 100 }, /MTU 100 is outside 576-9000/],
    [{ addresses: ['10.0.0.1'] }, /"10.0.0.1" is not an address with a prefix length/],
    [{ vxlan: { ...net.vxlan!, vni: 0 } }, /VNI 0 is outside/],
    [{ vxlan: { ...net.vxlan!, remotes: ['nope'] } }, /remote "nope" is not an address/],
    [{ ports: [{ kind: 'tap', name: 'crbr1' }] }, /Cannot plan tap "crbr1": the name is used twice/],
    [{ ports: [{ kind: 'existing', name: 'gone0' }] }, /Cannot attach interface "gone0" to bridge "crbr1": it does not exist/],
  ];
  for (const [patch, message] of bad) assert.throws(() => planLinks([{ ...net, ...patch }], synced()), message);
});
