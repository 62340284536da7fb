import { createHash } from 'node:crypto';
import { ApiError } from '../../api/errors.ts';
import { formatIpv4, formatIpv6, parseIp, parsePrefix, prefixContains, prefixLast } from '../../api/ip.ts';
import { networkHostAddress, type NetworkSpec } from '../../api/kinds/network.ts';
import type { VmNic } from '../../api/kinds/vm.ts';

/** What one NIC got: the shape of `vm.status.addresses`. */
export interface NicAddress {
  nic: number;
  mac: string;
  ipv4?: string;
  ipv6?: string;
}

/** A VM as the address book sees it. */
export interface IpamVm {
  id: string;
  project: string;
  name: string;
  nics: VmNic[];
  /** What it holds now (status.addresses), kept where still valid so addresses are stable. */
  current?: NicAddress[];
}

/** Looks up a network of a project: its spec, or undefined when it does not exist. */
export type NetworkLookup = (project: string, name: string) => NetworkSpec | undefined;

/** A locally administered, stable MAC for a NIC: 52:54:00 (QEMU's prefix) + 24 bits of hash. */
export function generatedMac(vmId: string, nic: number, attempt: number): string {
  const h = createHash('sha256').update(`${vmId}/${nic}/${attempt}`).digest();
  return ['52', '54', '00', ...[h[0]!, h[1]!, h[2]!].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The modified EUI-64 address SLAAC derives from a MAC inside a /64. */
export function eui64(prefixNetwork: bigint, mac: string): string {
  const b = mac.toLowerCase().split(':').map((x) => parseInt(x, 16));
  const eui = [b[0]! ^ 0x02, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
  let value = prefixNetwork;
  for (let i = 0; i < 8; i++) value |= BigInt(eui[i]!) << BigInt(56 - 8 * i);
  return formatIpv6(value);
}

/** One NIC's holdings, by network key. */
interface Held {
  nic: number;
  key: string;
  mac: string;
  ipv4?: string;
}

const netKey = (project: string, network: string) => `${project}/${network}`;

/**
 * The server's IPAM state: which IPv4 address of which network and which MAC
 * each VM holds. Pure and in memory; rebuilt from `vm.status.addresses` on
 * start. `assign` is all-or-nothing: on any error the VM keeps what it had.
 */
export class AddressBook {
  /** network key → address → VM id. */
  private readonly v4 = new Map<string, Map<string, string>>();
  private readonly macs = new Map<string, string>();
  private readonly held = new Map<string, Held[]>();

  /** Records what a VM already holds; entries another VM holds are skipped (that VM gets new ones on its next assign). */
  adopt(vm: IpamVm): void {
    const entries: Held[] = [];
    for (const a of vm.current ?? []) {
      const nic = vm.nics[a.nic];
      if (!nic) continue;
      const key = netKey(vm.project, nic.network);
      const mac = a.mac.toLowerCase();
      if (this.macs.has(mac) || (a.ipv4 && this.v4.get(key)?.has(a.ipv4))) continue;
      entries.push({ nic: a.nic, key, mac, ...(a.ipv4 ? { ipv4: a.ipv4 } : {}) });
      this.take(vm.id, key, mac, a.ipv4);
    }
    this.held.set(vm.id, entries);
  }

  /** Frees everything a VM holds (it was deleted). */
  release(vmId: string): void {
    for (const e of this.held.get(vmId) ?? []) {
      if (this.macs.get(e.mac) === vmId) this.macs.delete(e.mac);
      if (e.ipv4 && this.v4.get(e.key)?.get(e.ipv4) === vmId) this.v4.get(e.key)!.delete(e.ipv4);
    }
    this.held.delete(vmId);
  }

  /** Addresses for every NIC of a VM, keeping what it holds where still valid; throws `invalid`/`conflict`/`exhausted`-style ApiErrors. */
  assign(vm: IpamVm, networks: NetworkLookup, gatewayOf: (project: string, network: string) => string | undefined): NicAddress[] {
    const before = this.held.get(vm.id) ?? [];
    this.release(vm.id);
    const taken: Held[] = [];
    const unclaimed = [...before];
    try {
      const out = vm.nics.map((nic, i) => {
        const spec = networks(vm.project, nic.network);
        if (!spec) throw new ApiError('not_found', `Cannot address NIC ${i} of vm "${vm.name}": network "${nic.network}" does not exist`);
        const key = netKey(vm.project, nic.network);
        const prev = claim(unclaimed, i, key) ?? (before.length ? undefined : vm.current?.find((a) => a.nic === i));
        const mac = this.mac(vm, i, nic, prev);
        const isGateway = gatewayOf(vm.project, nic.network) === vm.name;
        const ipv4 = this.ipv4(vm, i, nic, spec, key, mac, prev?.ipv4, isGateway);
        const ipv6 = ipv6For(vm, i, nic, spec, mac);
        this.take(vm.id, key, mac, ipv4);
        taken.push({ nic: i, key, mac, ...(ipv4 ? { ipv4 } : {}) });
        return { nic: i, mac, ...(ipv4 ? { ipv4 } : {}), ...(ipv6 ? { ipv6 } : {}) };
      });
      this.held.set(vm.id, taken);
      return out;
    } catch (e) {
      this.held.set(vm.id, taken);
      this.release(vm.id);
      for (const b of before) this.take(vm.id, b.key, b.mac, b.ipv4);
      this.held.set(vm.id, before);
      throw e;
    }
  }

  private take(vmId: string, key: string, mac: string, ipv4: string | undefined): void {
    this.macs.set(mac, vmId);
    if (!ipv4) return;
    let m = this.v4.get(key);
    if (!m) this.v4.set(key, (m = new Map()));
    m.set(ipv4, vmId);
  }

  private mac(vm: IpamVm, i: number, nic: VmNic, prev: Pick<NicAddress, 'mac'> | undefined): string {
    const want = nic.mac?.toLowerCase() ?? prev?.mac.toLowerCase();
    if (want) {
      if (this.macs.has(want)) {
        if (nic.mac) throw new ApiError('conflict', `Cannot address NIC ${i} of vm "${vm.name}": MAC "${nic.mac}" is taken by another NIC`);
      } else return want;
    }
    for (let attempt = 0; ; attempt++) {
      const mac = generatedMac(vm.id, i, attempt);
      if (!this.macs.has(mac)) return mac;
    }
  }

  private ipv4(vm: IpamVm, i: number, nic: VmNic, spec: NetworkSpec, key: string, mac: string, prev: string | undefined, isGateway: boolean): string | undefined {
    const where = `NIC ${i} of vm "${vm.name}"`;
    if (nic.ipv4 === 'none') return undefined;
    const subnet = spec.ipv4 ? parsePrefix(spec.ipv4.subnet) : undefined;
    const isStatic = nic.ipv4 !== undefined && nic.ipv4 !== 'dhcp';
    if (!spec.ipv4 || !subnet) {
      if (isStatic) throw new ApiError('invalid', `Cannot address ${where}: network "${nic.network}" has no IPv4 subnet`);
      return undefined;
    }
    const used = this.v4.get(key) ?? new Map<string, string>();
    const gateway = spec.ipv4.gateway ?? formatIpv4(subnet.network + 1n);
    const reserved = new Set([formatIpv4(subnet.network), formatIpv4(prefixLast(subnet)), networkHostAddress(spec)!]);
    if (!isGateway) reserved.add(gateway);
    const reservation = spec.ipv4.reservations?.find((r) => r.mac.toLowerCase() === mac);
    for (const r of spec.ipv4.reservations ?? []) if (r !== reservation) reserved.add(r.address);
    const free = (a: string) => !reserved.has(a) && !used.has(a);
    if (isStatic) {
      const ip = parseIp(nic.ipv4!);
      if (!ip || ip.family !== 4 || !prefixContains(subnet, ip))
        throw new ApiError('invalid', `Cannot address ${where}: "${nic.ipv4}" is outside subnet ${spec.ipv4.subnet} of network "${nic.network}"`);
      if (!free(nic.ipv4!)) throw new ApiError('conflict', `Cannot address ${where}: "${nic.ipv4}" is already taken on network "${nic.network}"`);
      return nic.ipv4;
    }
    if (reservation) {
      if (used.has(reservation.address)) throw new ApiError('conflict', `Cannot address ${where}: reserved "${reservation.address}" is already taken`);
      return reservation.address;
    }
    if (isGateway && !used.has(gateway)) return gateway;
    if (prev && free(prev) && prefixContains(subnet, parseIp(prev)!)) return prev;
    const range = spec.ipv4.dhcp;
    const lo = range ? parseIp(range.start)!.value : subnet.network + 1n;
    const hi = range ? parseIp(range.end)!.value : prefixLast(subnet) - 1n;
    for (let v = lo; v <= hi; v++) {
      const a = formatIpv4(v);
      if (free(a)) return a;
    }
    throw new ApiError('conflict', `Cannot address ${where}: the address pool of network "${nic.network}" is exhausted`, {
      details: [{ path: `/spec/nics/${i}/network`, message: `no free address in ${range ? `${range.start}-${range.end}` : spec.ipv4.subnet}` }],
    });
  }
}

/**
 * What a NIC held before, matched by network rather than position: when an
 * earlier NIC is removed, the ones after it keep their MAC and address. The
 * same position on the same network wins; then the first on that network.
 */
function claim(unclaimed: Held[], nic: number, key: string): Held | undefined {
  let at = unclaimed.findIndex((h) => h.nic === nic && h.key === key);
  if (at < 0) at = unclaimed.findIndex((h) => h.key === key);
  return at < 0 ? undefined : unclaimed.splice(at, 1)[0];
}

function ipv6For(vm: IpamVm, i: number, nic: VmNic, spec: NetworkSpec, mac: string): string | undefined {
  if (nic.ipv6 === 'none' || !spec.ipv6) return undefined;
  const prefix = parsePrefix(spec.ipv6.prefix);
  if (!prefix) return undefined;
  if (nic.ipv6 && nic.ipv6 !== 'auto') {
    const ip = parseIp(nic.ipv6);
    if (!ip || ip.family !== 6 || !prefixContains(prefix, ip))
      throw new ApiError('invalid', `Cannot address NIC ${i} of vm "${vm.name}": "${nic.ipv6}" is outside prefix ${spec.ipv6.prefix} of network "${nic.network}"`);
    return formatIpv6(ip.value);
  }
  return prefix.length === 64 ? eui64(prefix.network, mac) : undefined;
}
