import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkSpec } from '../../api/kinds/network.ts';
import { AddressBook, eui64, generatedMac, type IpamVm } from './address-book.ts';

const nets: Record<string, NetworkSpec> = {
  lan: { ipv4: { subnet: '10.0.0.0/29' } },
  pool: { ipv4: { subnet: '10.1.0.0/24', dhcp: { start: '10.1.0.100', end: '10.1.0.101' } } },
  v6: { ipv6: { mode: 'slaac', prefix: 'fd00:1::/64' } },
  routed: { ipv4: { subnet: '10.2.0.0/24', gateway: '10.2.0.254' }, gateway: { mode: 'vm', vm: 'router' } },
};
const lookup = (_p: string, n: string) => nets[n];
const noGateway = () => undefined;
const vm = (id: string, nics: IpamVm['nics'], current?: IpamVm['current']): IpamVm => ({ id, project: 'default', name: id, nics, ...(current ? { current } : {}) });

test('NICs get distinct generated MACs and the lowest free addresses, skipping network, gateway and host addresses', () => {
  const book = new AddressBook();
  const a = book.assign(vm('a', [{ network: 'lan' }, { network: 'lan' }]), lookup, noGateway);
  assert.deepEqual(a.map((x) => x.ipv4), ['10.0.0.2', '10.0.0.3']);
  assert.match(a[0]!.mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
  assert.notEqual(a[0]!.mac, a[1]!.mac);
  assert.equal(generatedMac('a', 0, 0), a[0]!.mac);
});

test('a static address outside the subnet or already taken is refused and changes nothing', () => {
  const book = new AddressBook();
  book.assign(vm('a', [{ network: 'lan', ipv4: '10.0.0.4' }]), lookup, noGateway);
  assert.throws(() => book.assign(vm('b', [{ network: 'lan', ipv4: '10.9.0.4' }]), lookup, noGateway), /"10\.9\.0\.4" is outside subnet 10\.0\.0\.0\/29/);
  assert.throws(() => book.assign(vm('b', [{ network: 'lan' }, { network: 'lan', ipv4: '10.0.0.4' }]), lookup, noGateway), /"10\.0\.0\.4" is already taken/);
  // b's first NIC was not left holding 10.0.0.2.
  assert.equal(book.assign(vm('c', [{ network: 'lan' }]), lookup, noGateway)[0]!.ipv4, '10.0.0.2');
});

test('a pool running dry is a clear error, and deleting a VM releases its address', () => {
  const book = new AddressBook();
  book.assign(vm('a', [{ network: 'pool' }]), lookup, noGateway);
  book.assign(vm('b', [{ network: 'pool' }]), lookup, noGateway);
  assert.throws(() => book.assign(vm('c', [{ network: 'pool' }]), lookup, noGateway), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'conflict');
    assert.match(e.message, /the address pool of network "pool" is exhausted/);
    return true;
  });
  book.release('a');
  assert.equal(book.assign(vm('c', [{ network: 'pool' }]), lookup, noGateway)[0]!.ipv4, '10.1.0.100');
});

test('a VM keeps its addresses and MAC across reassignments, also after a restart that adopts them', () => {
  const book = new AddressBook();
  const first = book.assign(vm('a', [{ network: 'lan' }]), lookup, noGateway);
  book.assign(vm('b', [{ network: 'lan' }]), lookup, noGateway);
  assert.deepEqual(book.assign(vm('a', [{ network: 'lan' }], first), lookup, noGateway), first);
  const fresh = new AddressBook();
  fresh.adopt(vm('a', [{ network: 'lan' }], first));
  assert.deepEqual(fresh.assign(vm('x', [{ network: 'lan' }]), lookup, noGateway).map((x) => x.ipv4), ['10.0.0.3']);
});

test('the gateway VM of a network gets the gateway address; no other NIC ever does', () => {
  const book = new AddressBook();
  const gw = (_p: string, n: string) => (n === 'routed' ? 'router' : undefined);
  assert.throws(() => book.assign(vm('x', [{ network: 'routed', ipv4: '10.2.0.254' }]), lookup, gw), /already taken/);
  assert.equal(book.assign({ ...vm('r', [{ network: 'routed' }]), name: 'router' }, lookup, gw)[0]!.ipv4, '10.2.0.254');
  assert.equal(book.assign(vm('y', [{ network: 'routed' }]), lookup, gw)[0]!.ipv4, '10.2.0.1');
});

test('IPv6 SLAAC addresses are the EUI-64 of the MAC; a taken explicit MAC is refused', () => {
  const book = new AddressBook();
  const [a] = book.assign(vm('a', [{ network: 'v6', mac: '52:54:00:12:34:56' }]), lookup, noGateway);
  assert.deepEqual(a, { nic: 0, mac: '52:54:00:12:34:56', ipv6: 'fd00:1::5054:ff:fe12:3456' });
  assert.equal(eui64(0n, '52:54:00:12:34:56'), '::5054:ff:fe12:3456');
  assert.throws(() => book.assign(vm('b', [{ network: 'v6', mac: '52:54:00:12:34:56' }]), lookup, noGateway), /MAC "52:54:00:12:34:56" is taken/);
  assert.throws(() => book.assign(vm('b', [{ network: 'nope' }]), lookup, noGateway), /network "nope" does not exist/);
});

test('removing an earlier NIC leaves the later NICs their MACs and addresses', () => {
  const book = new AddressBook();
  const both = book.assign(vm('a', [{ network: 'lan' }, { network: 'pool' }]), lookup, noGateway);
  const left = book.assign(vm('a', [{ network: 'pool' }], both), lookup, noGateway);
  assert.deepEqual(left, [{ ...both[1]!, nic: 0 }], 'the pool NIC keeps its MAC and address at its new position');
  assert.equal(book.assign(vm('b', [{ network: 'lan' }]), lookup, noGateway)[0]!.ipv4, both[0]!.ipv4, 'the removed NIC\'s address is free again');
});
