import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import type { FirewallSpec } from '../../api/kinds/firewall.ts';
import { networkVni, type HostNetworkView, type NetworkSpec } from '../../api/kinds/network.ts';
import type { NodeStatus } from '../../api/kinds/node.ts';
import type { VmSpec, VmStatus } from '../../api/kinds/vm.ts';
import type { AnyObject } from '../../api/object.ts';
import { listAll } from '../../store/list-all.ts';
import type { Store } from '../../store/store.ts';
import { IdParams, withErrors } from '../routes/route-schemas.ts';

const key = (project: string | undefined, name: string) => `${project ?? ''}/${name}`;

/** The firewalls a NIC gets: its network's, then its own, without repeats. */
export function nicFirewalls(nic: { firewalls?: string[] }, network: NetworkSpec | undefined): string[] {
  return [...new Set([...(network?.firewalls ?? []), ...(nic.firewalls ?? [])])];
}

/** A node's view of the networks its VMs use (see HostNetworkView), computed from the whole store. */
export async function hostNetworkView(store: Store, node: string): Promise<HostNetworkView> {
  const [vms, nodes, networks, firewalls] = await Promise.all(['vm', 'node', 'network', 'firewall'].map(async (kind) => (await listAll(store, { kind, project: '*' })).items));
  const netBy = new Map(networks!.map((n) => [key(n.project, n.name), n]));
  const fwBy = new Map(firewalls!.map((f) => [key(f.project, f.name), f]));
  const underlay = new Map(nodes!.map((n) => [n.name, (n.status as NodeStatus).underlayIp]));
  const nicsOf = (vm: AnyObject) => (vm.spec as VmSpec).nics ?? [];
  const mine = vms!.filter((vm) => (vm.status as VmStatus).node === node);
  const used = new Set(mine.flatMap((vm) => nicsOf(vm).map((n) => key(vm.project, n.network))));
  const peers = new Map<string, Set<string>>();
  const members = new Map<string, Set<string>>();
  for (const vm of vms!) {
    const st = vm.status as VmStatus;
    nicsOf(vm).forEach((nic, i) => {
      const k = key(vm.project, nic.network);
      const ip = st.node && st.node !== node ? underlay.get(st.node) : undefined;
      if (ip && used.has(k)) peers.set(k, (peers.get(k) ?? new Set()).add(ip));
      const a = st.addresses?.find((x) => x.nic === i);
      for (const fw of nicFirewalls(nic, netBy.get(k)?.spec as NetworkSpec | undefined)) {
        const m = members.get(key(vm.project, fw)) ?? new Set<string>();
        for (const ip of [a?.ipv4, a?.ipv6]) if (ip) m.add(ip);
        members.set(key(vm.project, fw), m);
      }
    });
  }
  const attached = new Set<string>();
  for (const vm of mine) for (const nic of nicsOf(vm)) for (const fw of nicFirewalls(nic, netBy.get(key(vm.project, nic.network))?.spec as NetworkSpec | undefined)) attached.add(key(vm.project, fw));
  const named = new Set<string>();
  const view: HostNetworkView = { networks: [], firewalls: [], members: [] };
  for (const k of [...attached].sort()) {
    const fw = fwBy.get(k);
    if (!fw) continue;
    view.firewalls.push({ project: fw.project ?? '', name: fw.name, spec: fw.spec as FirewallSpec });
    for (const r of (fw.spec as FirewallSpec).rules) if (r.remote?.firewall) named.add(key(fw.project, r.remote.firewall));
  }
  for (const k of [...named].sort()) {
    const [project, firewall] = k.split('/') as [string, string];
    view.members.push({ project, firewall, addresses: [...(members.get(k) ?? [])].sort() });
  }
  for (const k of [...used].sort()) {
    const n = netBy.get(k);
    if (!n) continue;
    const vni = networkVni(n);
    view.networks.push({ project: n.project ?? '', name: n.name, spec: n.spec as NetworkSpec, ...(vni !== undefined ? { vni } : {}), peers: [...(peers.get(k) ?? [])].sort() });
  }
  return view;
}

/** `GET /v1/nodes/:id/network`: the node's network view (the node itself, or an admin). */
export function hostNetworkRoutes(store: () => Store): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get<{ Params: { id: string } }>(
      '/v1/nodes/:id/network',
      { config: { resource: 'node', kind: 'node' }, schema: { tags: ['node'], summary: "A node's view of the networks its VMs use", params: IdParams, response: withErrors({ 200: Type.Unknown() }) } },
      async (request) => {
        const node = await store().get({ kind: 'node', idOrName: request.params.id }).catch(() => undefined);
        if (!node) throw new ApiError('not_found', `Cannot find node "${request.params.id}"`);
        return hostNetworkView(store(), node.name);
      },
    );
  };
}
