import type { FirewallSpec } from '../../api/kinds/firewall.ts';
import { networkVni, type HostNetworkView, type NetworkSpec } from '../../api/kinds/network.ts';
import type { NodeStatus } from '../../api/kinds/node.ts';
import type { VmSpec, VmStatus } from '../../api/kinds/vm.ts';
import type { AnyObject } from '../../api/object.ts';
import type { NicAddress } from './address-book.ts';

const key = (project: string | undefined, name: string) => `${project ?? ''}/${name}`;

/** The firewalls a NIC gets: its network's, then its own, without repeats. */
export function nicFirewalls(nic: { firewalls?: string[] }, network: NetworkSpec | undefined): string[] {
  return [...new Set([...(network?.firewalls ?? []), ...(nic.firewalls ?? [])])];
}

/**
 * What a node's view is made of, so a change invalidates exactly the views
 * built from it: `node:` its VMs' NICs, `net:` a network's spec and peers,
 * `fw:` a firewall's spec, `mem:` a firewall's member addresses.
 */
export type ViewDep = `${'node' | 'net' | 'fw' | 'mem'}:${string}`;

/** What the views need of a VM. */
interface VmEntry {
  project: string;
  node: string | undefined;
  nics: { network: string; firewalls?: string[] }[];
  addresses: NicAddress[];
}

function vmEntry(o: AnyObject): VmEntry {
  const st = o.status as VmStatus;
  const nics = ((o.spec as VmSpec).nics ?? []).map((n) => ({ network: n.network, ...(n.firewalls ? { firewalls: n.firewalls } : {}) }));
  return { project: o.project ?? '', node: st.node, nics, addresses: st.addresses ?? [] };
}

/** The part of a VM its own node's view shows (networks and firewalls of its NICs). */
const shape = (e: VmEntry | undefined) => (e ? JSON.stringify([e.node, e.nics]) : '');

function addTo<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function removeFrom<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (!s.size) m.delete(k);
}

/**
 * The VMs, networks, firewalls and node underlay addresses that node network
 * views are built from, indexed so that one view costs what that node's VMs,
 * networks and named firewalls hold, not the whole store. Pure: fed changes
 * by `apply`, which says which views they invalidate.
 */
export class NetworkIndex {
  private readonly vms = new Map<string, VmEntry>();
  private readonly byNode = new Map<string, Set<string>>();
  private readonly byNetwork = new Map<string, Set<string>>();
  private readonly byNicFirewall = new Map<string, Set<string>>();
  /** network key → node → how many of the node's VMs are on it; the nodes are its VXLAN peers. */
  private readonly hosts = new Map<string, Map<string, number>>();
  private readonly networks = new Map<string, AnyObject>();
  private readonly netsByFirewall = new Map<string, Set<string>>();
  private readonly firewalls = new Map<string, AnyObject>();
  private readonly underlay = new Map<string, string>();
  /** firewall key → its members' addresses, sorted; dropped when a `mem:` dependency is touched. */
  private readonly members = new Map<string, string[]>();

  /** Applies one stored change; returns the dependencies it touched. */
  apply(type: 'put' | 'delete', o: AnyObject): ViewDep[] {
    const touched = new Set<ViewDep>();
    const put = type === 'put';
    switch (o.kind) {
      case 'vm':
        this.vm(o.id, put ? vmEntry(o) : undefined, touched);
        break;
      case 'network':
        this.network(key(o.project, o.name), put ? o : undefined, touched);
        break;
      case 'firewall': {
        const k = key(o.project, o.name);
        if (put) this.firewalls.set(k, o);
        else this.firewalls.delete(k);
        touched.add(`fw:${k}`);
        break;
      }
      case 'node':
        this.node(o.name, put ? (o.status as NodeStatus).underlayIp : undefined, touched);
        break;
    }
    for (const d of touched) if (d.startsWith('mem:')) this.members.delete(d.slice(4));
    return [...touched];
  }

  private vm(id: string, next: VmEntry | undefined, touched: Set<ViewDep>): void {
    const prev = this.vms.get(id);
    const moved = shape(prev) !== shape(next);
    if (!moved && JSON.stringify(prev?.addresses) === JSON.stringify(next?.addresses)) {
      if (next) this.vms.set(id, next);
      return;
    }
    const before = prev ? this.memberships(prev) : new Map<string, string>();
    if (prev) this.unindex(id, prev, touched);
    if (next) this.index(id, next, touched);
    else this.vms.delete(id);
    const after = next ? this.memberships(next) : new Map<string, string>();
    for (const fw of new Set([...before.keys(), ...after.keys()])) if (before.get(fw) !== after.get(fw)) touched.add(`mem:${fw}`);
    if (moved) for (const n of [prev?.node, next?.node]) if (n) touched.add(`node:${n}`);
  }

  private nets(e: VmEntry): Set<string> {
    return new Set(e.nics.map((n) => key(e.project, n.network)));
  }

  private index(id: string, e: VmEntry, touched: Set<ViewDep>): void {
    this.vms.set(id, e);
    if (e.node) addTo(this.byNode, e.node, id);
    for (const nic of e.nics) for (const fw of nic.firewalls ?? []) addTo(this.byNicFirewall, key(e.project, fw), id);
    for (const k of this.nets(e)) {
      addTo(this.byNetwork, k, id);
      if (!e.node) continue;
      let on = this.hosts.get(k);
      if (!on) this.hosts.set(k, (on = new Map()));
      const n = on.get(e.node) ?? 0;
      on.set(e.node, n + 1);
      if (n === 0) touched.add(`net:${k}`);
    }
  }

  private unindex(id: string, e: VmEntry, touched: Set<ViewDep>): void {
    if (e.node) removeFrom(this.byNode, e.node, id);
    for (const nic of e.nics) for (const fw of nic.firewalls ?? []) removeFrom(this.byNicFirewall, key(e.project, fw), id);
    for (const k of this.nets(e)) {
      removeFrom(this.byNetwork, k, id);
      const on = e.node ? this.hosts.get(k) : undefined;
      if (!on || !e.node) continue;
      const n = (on.get(e.node) ?? 1) - 1;
      if (n > 0) on.set(e.node, n);
      else {
        on.delete(e.node);
        if (!on.size) this.hosts.delete(k);
        touched.add(`net:${k}`);
      }
    }
  }

  private network(k: string, next: AnyObject | undefined, touched: Set<ViewDep>): void {
    const project = k.slice(0, k.indexOf('/'));
    const before = new Set((this.networks.get(k)?.spec as NetworkSpec | undefined)?.firewalls ?? []);
    const after = new Set((next?.spec as NetworkSpec | undefined)?.firewalls ?? []);
    for (const fw of before) if (!after.has(fw)) removeFrom(this.netsByFirewall, key(project, fw), k);
    for (const fw of after) if (!before.has(fw)) addTo(this.netsByFirewall, key(project, fw), k);
    // The VMs on it joined or left the members of the firewalls it added or dropped.
    for (const fw of new Set([...before, ...after])) if (before.has(fw) !== after.has(fw)) touched.add(`mem:${key(project, fw)}`);
    if (next) this.networks.set(k, next);
    else this.networks.delete(k);
    touched.add(`net:${k}`);
  }

  private node(name: string, ip: string | undefined, touched: Set<ViewDep>): void {
    if (this.underlay.get(name) === ip) return;
    if (ip) this.underlay.set(name, ip);
    else this.underlay.delete(name);
    // Every network this node has VMs on lists it as a peer.
    for (const id of this.byNode.get(name) ?? []) for (const k of this.nets(this.vms.get(id)!)) touched.add(`net:${k}`);
  }

  /** firewall key → the addresses a VM adds to its members (sorted, joined). */
  private memberships(e: VmEntry): Map<string, string> {
    const out = new Map<string, string[]>();
    e.nics.forEach((nic, i) => {
      const a = e.addresses.find((x) => x.nic === i);
      for (const fw of nicFirewalls(nic, this.networks.get(key(e.project, nic.network))?.spec as NetworkSpec | undefined)) {
        const ips = out.get(key(e.project, fw)) ?? [];
        for (const ip of [a?.ipv4, a?.ipv6]) if (ip) ips.push(ip);
        out.set(key(e.project, fw), ips);
      }
    });
    return new Map([...out].map(([k, ips]) => [k, ips.sort().join(' ')]));
  }

  private memberAddresses(fw: string): string[] {
    let list = this.members.get(fw);
    if (list) return list;
    const ids = new Set(this.byNicFirewall.get(fw));
    for (const net of this.netsByFirewall.get(fw) ?? []) for (const id of this.byNetwork.get(net) ?? []) ids.add(id);
    const ips = new Set<string>();
    for (const id of ids) for (const ip of this.memberships(this.vms.get(id)!).get(fw)?.split(' ') ?? []) if (ip) ips.add(ip);
    this.members.set(fw, (list = [...ips].sort()));
    return list;
  }

  /** A node's view of the networks its VMs use (see HostNetworkView), and what it was built from. */
  view(node: string): { view: HostNetworkView; deps: ViewDep[] } {
    const deps: ViewDep[] = [`node:${node}`];
    const mine = [...(this.byNode.get(node) ?? [])].map((id) => this.vms.get(id)!);
    const used = new Set<string>();
    const attached = new Set<string>();
    for (const vm of mine)
      for (const nic of vm.nics) {
        const k = key(vm.project, nic.network);
        used.add(k);
        for (const fw of nicFirewalls(nic, this.networks.get(k)?.spec as NetworkSpec | undefined)) attached.add(key(vm.project, fw));
      }
    const named = new Set<string>();
    const view: HostNetworkView = { networks: [], firewalls: [], members: [] };
    for (const k of [...attached].sort()) {
      deps.push(`fw:${k}`);
      const fw = this.firewalls.get(k);
      if (!fw) continue;
      view.firewalls.push({ project: fw.project ?? '', name: fw.name, spec: fw.spec as FirewallSpec });
      for (const r of (fw.spec as FirewallSpec).rules) if (r.remote?.firewall) named.add(key(fw.project, r.remote.firewall));
    }
    for (const k of [...named].sort()) {
      deps.push(`mem:${k}`);
      const [project, firewall] = k.split('/') as [string, string];
      view.members.push({ project, firewall, addresses: this.memberAddresses(k) });
    }
    for (const k of [...used].sort()) {
      deps.push(`net:${k}`);
      const n = this.networks.get(k);
      if (!n) continue;
      const vni = networkVni(n);
      const peers = new Set<string>();
      for (const other of this.hosts.get(k)?.keys() ?? []) {
        const ip = other === node ? undefined : this.underlay.get(other);
        if (ip) peers.add(ip);
      }
      view.networks.push({ project: n.project ?? '', name: n.name, spec: n.spec as NetworkSpec, ...(vni !== undefined ? { vni } : {}), peers: [...peers].sort() });
    }
    return { view, deps };
  }
}
