import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFloodEntries, parseIpLinks } from './link-state.ts';

const ipJson = JSON.stringify([
  { ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
  {
    ifname: 'crbr1', flags: ['BROADCAST', 'UP'], mtu: 1450, ifalias: 'crowd:bridge:blue',
    linkinfo: { info_kind: 'bridge', info_data: { stp_state: 0, forward_delay: 0, nf_call_iptables: 1, nf_call_ip6tables: 1 } },
    addr_info: [
      { family: 'inet', local: '10.0.0.1', prefixlen: 24, scope: 'global' },
      { family: 'inet6', local: 'fd00:0::1', prefixlen: 64, scope: 'global' },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
      { family: 'inet6', local: 'fd00::4ec:dfff:fe5c:db42', prefixlen: 64, scope: 'global', dynamic: true },
    ],
  },
  {
    ifname: 'crvx1', flags: ['BROADCAST'], mtu: 1450, master: 'crbr1',
    linkinfo: { info_kind: 'vxlan', info_data: { id: 42, local: '192.0.2.1', port: 4789, learning: false, link: 'eth0' } },
  },
  { ifname: 'crtap1', flags: [], mtu: 1500, linkinfo: { info_kind: 'tun', info_data: { type: 'tap', user: 'alice' } } },
]);

test('ip -j -d addr show is read into links with canonical addresses', () => {
  const links = parseIpLinks(ipJson, (u) => (u === 'alice' ? 1000 : undefined));
  assert.deepEqual(links.get('crbr1'), {
    name: 'crbr1', kind: 'bridge', mtu: 1450, up: true, alias: 'crowd:bridge:blue',
    addresses: ['10.0.0.1/24', 'fd00::1/64', 'fe80::1/64'],
    bridge: { stpState: 0, forwardDelay: 0, nfCallIptables: 1, nfCallIp6tables: 1 },
  });
  assert.deepEqual(links.get('crvx1')!.vxlan, { vni: 42, local: '192.0.2.1', port: 4789, learning: false, underlay: 'eth0' });
  assert.equal(links.get('crvx1')!.master, 'crbr1');
  assert.equal(links.get('crtap1')!.tapOwner, 1000);
  assert.equal(links.get('lo')!.kind, '');
});

test('only all-zero FDB entries count as flood destinations', () => {
  const fdb = JSON.stringify([
    { mac: '0e:23:c6:0e:19:84', flags: [], master: 'br0', state: 'permanent' },
    { mac: '00:00:00:00:00:00', dst: '192.0.2.3', flags: ['self'], state: 'permanent' },
    { mac: '00:00:00:00:00:00', dst: '192.0.2.2', flags: ['self'], state: 'permanent' },
    { mac: '52:54:00:00:00:01', dst: '192.0.2.4', flags: ['self'] },
  ]);
  assert.deepEqual(parseFloodEntries(fdb), ['192.0.2.2', '192.0.2.3']);
});
