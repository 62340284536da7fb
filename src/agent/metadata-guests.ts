import type { HostNetworkView, NetworkSpec } from '../api/kinds/network.ts';
import type { VmSpec, VmStatus } from '../api/kinds/vm.ts';
import { formatIpv6, parseIpv6, parsePrefix } from '../api/ip.ts';
import type { AnyObject } from '../api/object.ts';
import type { Logger } from '../base/logger.ts';
import type { GuestInfo, GuestNic } from '../metadata/guest-info.ts';
import type { Connection, Listen, MetadataService } from '../metadata/metadata-service.ts';
import { linkLocalFromMac } from '../net/ip-address.ts';
import { metadataIpv6 } from '../net/nft-ruleset.ts';
import { desiredHostNetwork, networkRouter } from './host-network.ts';
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
 * Pure: each key → its guest. A key two VMs hold (overlapping subnets of
 * different projects on this host) is left out: the listener cannot tell them
 * apart, so neither is served rather than the wrong one.
 */
function uniqueIndex(entries: [string, GuestInfo][]): Map<string, GuestInfo> {
  const out = new Map<string, GuestInfo>();
  const ambiguous = new Set<string>();
  for (const [key, g] of entries) {
    if (out.has(key) && out.get(key) !== g) ambiguous.add(key);
    out.set(key, g);
  }
  for (const k of ambiguous) out.delete(k);
  return out;
}

/** Pure: each assigned address → its guest (the shared 169.254.169.254 listener); an address two VMs hold identifies neither. */
export function guestsByAddress(guests: GuestInfo[]): Map<string, GuestInfo> {
  return uniqueIndex(guests.flatMap((g) => g.nics.flatMap((n) => [n.ipv4?.address, n.ipv6?.address].filter((a) => a !== undefined).map((a): [string, GuestInfo] => [a, g]))));
}

/**
 * Pure: the link-local sources each VM NIC may use towards `fe80::a9fe:a9fe`
 * on its bridge, as `bridge%address` keys: the EUI-64 address of its pinned
 * MAC (the bridge's anti-spoofing lets nothing else of the link-local range
 * through) and its assigned IPv6 address. From the host network plan, so the
 * bridges are exactly those the agent gives the metadata address.
 */
export function linkKeys(vms: AnyObject[], view: HostNetworkView | undefined): { bridges: Set<string>; keys: Map<string, string[]> } {
  const plan = desiredHostNetwork(vms, view, { dnsmasqRunDir: '' });
  const bridgeOf = new Map(plan.spec.links.flatMap((l) => l.ports.map((p) => [p.name, l.bridge] as const)));
  const keys = new Map<string, string[]>();
  for (const vm of vms) {
    const addresses = (vm.status as VmStatus).addresses ?? [];
    const taps = plan.nics.get(vm.id) ?? [];
    keys.set(
      vm.id,
      taps.flatMap((t, i) => {
        const v6 = addresses.find((a) => a.nic === i)?.ipv6;
        const global = v6 !== undefined ? parseIpv6(v6) : undefined;
        return [linkLocalFromMac(t.mac), ...(global !== undefined ? [formatIpv6(global)] : [])].map((a) => `${bridgeOf.get(t.tap)}%${a}`);
      }),
    );
  }
  return { bridges: new Set(bridgeOf.values()), keys };
}

/** The per-bridge IPv6 listener of the metadata service. */
export function linkListen(bridge: string): Listen {
  return { host: `${metadataIpv6}%${bridge}`, port: 80, interface: bridge };
}

/**
 * The agent's side of the metadata service: the guests of this host's VMs,
 * found by the source address their NIC was assigned (169.254.169.254, one
 * listener) or by bridge and link-local source (fe80::a9fe:a9fe, one listener
 * per bridge with guests, opened and closed as bridges come and go).
 */
export class MetadataGuests {
  private byAddress = new Map<string, GuestInfo>();
  private byLink = new Map<string, GuestInfo>();
  private readonly guests = new Map<string, { key: string; info: GuestInfo; links: string[] }>();
  private readonly linked = new Set<string>();
  private listening = false;

  constructor(
    private readonly o: {
      place: GuestPlacement;
      /** Drops a deleted VM's state in the service (pipe, rendered documents). */
      forget(instanceId: string): void;
      /** Binds the service on 169.254.169.254 once the host network holds the address. */
      listen(): Promise<unknown>;
      /** The service's per-bridge IPv6 listeners (`linkListen`); without it only IPv4 is served. */
      links?: Pick<MetadataService, 'listen' | 'unlisten'>;
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
    this.guests.set(id, { ...g, key: JSON.stringify(info), info });
    this.reindex();
  }

  private reindex(): void {
    const all = [...this.guests.values()];
    this.byAddress = guestsByAddress(all.map((g) => g.info));
    this.byLink = uniqueIndex(all.flatMap((g) => g.links.map((k): [string, GuestInfo] => [k, g.info])));
  }

  /** The service's `identify`: the caller's source address (and, on a bridge's listener, that bridge) only, never anything it sends; nftables pins tap↔MAC↔IP. */
  identify(conn: Connection): GuestInfo | undefined {
    if (conn.interface !== undefined) {
      const scope = conn.remoteAddress.indexOf('%');
      return this.byLink.get(`${conn.interface}%${scope < 0 ? conn.remoteAddress : conn.remoteAddress.slice(0, scope)}`);
    }
    const a = conn.remoteAddress;
    return this.byAddress.get(a.startsWith('::ffff:') ? a.slice(7) : a);
  }

  /** Refreshes the guests from the VMs bound here (the same object while a VM is unchanged); listens once `networkReady`. */
  async update(vms: AnyObject[], view: HostNetworkView | undefined, networkReady: boolean): Promise<void> {
    const seen = new Set<string>();
    const { bridges, keys } = linkKeys(vms, view);
    for (const vm of vms) {
      const info = guestInfo(vm, view, this.o.place, this.secrets.get(vm.id));
      const key = JSON.stringify(info);
      const links = keys.get(vm.id) ?? [];
      seen.add(vm.id);
      const have = this.guests.get(vm.id);
      if (have?.key !== key) this.guests.set(vm.id, { key, info, links });
      else have.links = links;
    }
    for (const id of [...this.guests.keys()].filter((id) => !seen.has(id))) {
      this.guests.delete(id);
      this.o.forget(id);
    }
    // Secrets of a VM deleted while the agent was down, too.
    for (const id of this.secrets.ids()) if (!seen.has(id)) this.secrets.forget(id);
    this.reindex();
    await this.listenLinks(bridges, networkReady);
    if (!networkReady || this.listening) return;
    try {
      await this.o.listen();
      this.listening = true;
    } catch (e) {
      this.o.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'metadata service not listening yet; retrying');
    }
  }

  /** Closes the listeners of bridges that went away (the IPv4 one stays up), and opens one per new bridge once the network is applied. */
  private async listenLinks(bridges: Set<string>, networkReady: boolean): Promise<void> {
    const links = this.o.links;
    if (!links) return;
    for (const b of [...this.linked].filter((b) => !bridges.has(b))) {
      this.linked.delete(b);
      await links.unlisten(linkListen(b));
    }
    if (!networkReady) return;
    for (const b of [...bridges].filter((b) => !this.linked.has(b))) {
      try {
        await links.listen([linkListen(b)]);
        this.linked.add(b);
      } catch (e) {
        this.o.logger.warn({ bridge: b, err: e instanceof Error ? e.message : String(e) }, 'metadata service not listening on the bridge yet; retrying');
      }
    }
  }
}
