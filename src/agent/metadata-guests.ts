import type { HostNetworkView, NetworkSpec } from '../api/kinds/network.ts';
import type { VmSpec, VmStatus } from '../api/kinds/vm.ts';
import { formatIpv6, parsePrefix } from '../api/ip.ts';
import type { AnyObject } from '../api/object.ts';
import type { Logger } from '../base/logger.ts';
import type { GuestInfo, GuestNic } from '../metadata/guest-info.ts';
import type { Connection } from '../metadata/metadata-service.ts';
import { networkRouter } from './host-network.ts';
import type { SecretStore, Secrets } from './secret-store.ts';

/** Where this host's guests say they run: EC2 region/zone and OpenStack availability_zone. */
export interface GuestPlacement {
  region: string;
  availabilityZone: string;
}

/** Pure: what the metadata service tells one VM, from its object (spec + server-assigned addresses), the node's network view and its delivered secrets. */
export function guestInfo(vm: AnyObject, view: HostNetworkView | undefined, place: GuestPlacement, secret: Secrets = {}): GuestInfo {
  const spec = vm.spec as VmSpec;
  const status = vm.status as VmStatus;
  const project = vm.project ?? '';
  const nics: GuestNic[] = [...(status.addresses ?? [])]
    .sort((a, b) => a.nic - b.nic)
    .map((a) => {
      const net = view?.networks.find((n) => n.project === project && n.name === spec.nics?.[a.nic]?.network)?.spec;
      return { mac: a.mac, ...(net ? nicAddressing(net, a) : {}) };
    });
  return {
    instanceId: vm.id,
    name: vm.name,
    hostname: vm.name,
    project,
    region: place.region,
    availabilityZone: place.availabilityZone,
    instanceType: spec.machineType,
    imageId: spec.image,
    nics,
    sshKeys: spec.sshKeys ?? [],
    ...(spec.userData !== undefined ? { userData: spec.userData } : {}),
    parameters: { public: spec.install?.parameters ?? {}, private: spec.install?.privateParameters ?? {}, secret },
    launchIndex: 0,
    imdsTokenRequired: spec.imds?.tokens === 'required',
  };
}

function nicAddressing(net: NetworkSpec, a: { ipv4?: string; ipv6?: string }): Omit<GuestNic, 'mac'> {
  const v4 = net.ipv4 ? parsePrefix(net.ipv4.subnet) : undefined;
  const v6 = net.ipv6 ? parsePrefix(net.ipv6.prefix) : undefined;
  const router = networkRouter(net);
  const hostGateway = (net.gateway?.mode ?? 'host') === 'host';
  const gw6 = net.ipv6?.gateway ?? (hostGateway && v6 ? formatIpv6(v6.network + 1n) : undefined);
  const dns = [...(net.ipv4?.dns ?? []), ...(net.ipv6?.dns ?? [])];
  return {
    ...(a.ipv4 && v4 ? { ipv4: { address: a.ipv4, prefixLength: v4.length, ...(router ? { gateway: router } : {}), dhcp: true } } : {}),
    ...(a.ipv6 && v6 ? { ipv6: { address: a.ipv6, prefixLength: v6.length, ...(gw6 ? { gateway: gw6 } : {}), slaac: net.ipv6!.mode === 'slaac' } } : {}),
    ...(dns.length ? { dns } : {}),
    ...(net.mtu !== undefined ? { mtu: net.mtu } : {}),
  };
}

/**
 * Pure: each assigned address → its guest. An address two VMs hold (overlapping
 * subnets of different projects on this host) is left out: a single listener
 * cannot tell them apart, so neither is served rather than the wrong one.
 */
export function guestsByAddress(guests: GuestInfo[]): Map<string, GuestInfo> {
  const out = new Map<string, GuestInfo>();
  const ambiguous = new Set<string>();
  for (const g of guests) {
    for (const nic of g.nics) {
      for (const addr of [nic.ipv4?.address, nic.ipv6?.address]) {
        if (addr === undefined) continue;
        if (out.has(addr) && out.get(addr) !== g) ambiguous.add(addr);
        out.set(addr, g);
      }
    }
  }
  for (const a of ambiguous) out.delete(a);
  return out;
}

/** The agent's side of the metadata service: the guests of this host's VMs, found by the source address their NIC was assigned. */
export class MetadataGuests {
  private byAddress = new Map<string, GuestInfo>();
  private readonly guests = new Map<string, { key: string; info: GuestInfo }>();
  private listening = false;

  constructor(
    private readonly o: {
      place: GuestPlacement;
      /** Drops a deleted VM's state in the service (pipe, rendered documents). */
      forget(instanceId: string): void;
      /** Binds the service once the host network holds the metadata address. */
      listen(): Promise<unknown>;
      logger: Logger;
      /** Secret parameters delivered over the tunnel. */
      secrets: SecretStore;
    },
  ) {
    this.secrets.onPut((id) => this.takeSecrets(id));
  }

  private get secrets(): SecretStore {
    return this.o.secrets;
  }

  /** A VM's secrets arrived: its guest serves them from now on. */
  private takeSecrets(id: string): void {
    const g = this.guests.get(id);
    if (!g) return;
    const info = { ...g.info, parameters: { ...g.info.parameters, secret: this.secrets.get(id) ?? {} } };
    this.guests.set(id, { key: JSON.stringify(info), info });
    this.byAddress = guestsByAddress([...this.guests.values()].map((x) => x.info));
  }

  /** The service's `identify`: the caller's source address only (nftables pins tap↔MAC↔IP), never anything it sends. */
  identify(conn: Connection): GuestInfo | undefined {
    return this.byAddress.get(conn.remoteAddress.replace(/^::ffff:(?=\d+\.)/, ''));
  }

  /** Refreshes the guests from the VMs bound here (the same object while a VM is unchanged); listens once `networkReady`. */
  async update(vms: AnyObject[], view: HostNetworkView | undefined, networkReady: boolean): Promise<void> {
    const seen = new Set<string>();
    for (const vm of vms) {
      const info = guestInfo(vm, view, this.o.place, this.secrets.get(vm.id));
      const key = JSON.stringify(info);
      seen.add(vm.id);
      if (this.guests.get(vm.id)?.key !== key) this.guests.set(vm.id, { key, info });
    }
    for (const id of [...this.guests.keys()].filter((id) => !seen.has(id))) {
      this.guests.delete(id);
      this.secrets.forget(id);
      this.o.forget(id);
    }
    this.byAddress = guestsByAddress([...this.guests.values()].map((g) => g.info));
    if (!networkReady || this.listening) return;
    try {
      await this.o.listen();
      this.listening = true;
    } catch (e) {
      this.o.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'metadata service not listening yet; retrying');
    }
  }
}
