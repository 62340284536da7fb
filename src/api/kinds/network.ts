import { Type, type Static } from '@sinclair/typebox';
import type { ErrorDetail } from '../errors.ts';
import type { CheckContext, KindDef, Reference } from '../kind.ts';
import type { FirewallSpec } from './firewall.ts';
import { DnsLabel, createSchema, objectSchema, updateSchema } from '../object.ts';
import { formatIpv4, macPattern, parseIp, parsePrefix, prefixContains, prefixLast, prefixesOverlap, type Prefix } from '../ip.ts';

const Ipv4Address = Type.String({ maxLength: 15, description: 'an IPv4 address' });
const Ipv6Address = Type.String({ maxLength: 45, description: 'an IPv6 address' });

export const NetworkSpec = Type.Object(
  {
    mtu: Type.Optional(Type.Integer({ minimum: 576, maximum: 9000 })),
    ipv4: Type.Optional(
      Type.Object(
        {
          subnet: Type.String({ maxLength: 18, description: 'IPv4 CIDR, e.g. 10.0.0.0/24' }),
          gateway: Type.Optional(Ipv4Address),
          dns: Type.Optional(Type.Array(Ipv4Address, { maxItems: 4 })),
          dhcp: Type.Optional(
            Type.Object({ start: Ipv4Address, end: Ipv4Address }, { additionalProperties: false }),
          ),
          reservations: Type.Optional(
            Type.Array(
              Type.Object(
                { mac: Type.String({ pattern: macPattern }), address: Ipv4Address },
                { additionalProperties: false },
              ),
              { maxItems: 4096 },
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    ipv6: Type.Optional(
      Type.Object(
        {
          mode: Type.Union([Type.Literal('slaac'), Type.Literal('dhcpv6'), Type.Literal('static')]),
          prefix: Type.String({ maxLength: 49, description: 'IPv6 CIDR, /64 for slaac' }),
          gateway: Type.Optional(Ipv6Address),
          dns: Type.Optional(Type.Array(Ipv6Address, { maxItems: 4 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** host: the host routes and NATs; vm: a VM on the segment routes; none: isolated. */
    gateway: Type.Optional(
      Type.Object(
        {
          mode: Type.Union([Type.Literal('host'), Type.Literal('vm'), Type.Literal('none')]),
          vm: Type.Optional(DnsLabel),
        },
        { additionalProperties: false },
      ),
    ),
    /** Firewalls applied to every NIC on this network. */
    firewalls: Type.Optional(Type.Array(DnsLabel, { maxItems: 16, uniqueItems: true })),
    /** VXLAN network identifier; assigned by the server when absent. */
    vni: Type.Optional(Type.Integer({ minimum: 1, maximum: 16777215 })),
  },
  { additionalProperties: false },
);
export type NetworkSpec = Static<typeof NetworkSpec>;
export const NetworkStatus = Type.Object({}, { additionalProperties: true });
export const Network = objectSchema('network', NetworkSpec, NetworkStatus);
export type Network = Static<typeof Network>;
export const NetworkCreate = createSchema('network', NetworkSpec);
export type NetworkCreate = Static<typeof NetworkCreate>;

/**
 * The IPv4 address every host holds on a network's bridge (gateway for
 * `gateway: host`, else the last usable address: the DHCP server's identity),
 * so the server never hands it to a NIC and the agent knows what to configure.
 */
export function networkHostAddress(spec: NetworkSpec): string | undefined {
  const subnet = spec.ipv4 ? parsePrefix(spec.ipv4.subnet) : undefined;
  if (!subnet || subnet.family !== 4) return undefined;
  if ((spec.gateway?.mode ?? 'host') === 'host') return spec.ipv4!.gateway ?? formatIpv4(subnet.network + 1n);
  const last = prefixLast(subnet) - 1n;
  return formatIpv4(formatIpv4(last) === spec.ipv4!.gateway ? last - 1n : last);
}

/** The VNI agents use: the spec's, else the one the server assigned in status. */
export function networkVni(network: { spec: Record<string, unknown>; status: Record<string, unknown> }): number | undefined {
  const v = (network.spec as NetworkSpec).vni ?? network.status.vni;
  return typeof v === 'number' ? v : undefined;
}

function checkAddress(out: ErrorDetail[], path: string, text: string, family: 4 | 6, within?: Prefix) {
  const ip = parseIp(text);
  if (!ip || ip.family !== family) out.push({ path, message: `"${text}" is not an IPv${family} address` });
  else if (within && !prefixContains(within, ip)) out.push({ path, message: `"${text}" is outside the subnet` });
}

function checkNetwork(raw: Record<string, unknown>): ErrorDetail[] {
  const spec = raw as NetworkSpec;
  const out: ErrorDetail[] = [];
  if (spec.ipv4) {
    const subnet = parsePrefix(spec.ipv4.subnet);
    if (!subnet || subnet.family !== 4 || subnet.length > 30) {
      out.push({ path: '/spec/ipv4/subnet', message: `"${spec.ipv4.subnet}" is not an IPv4 CIDR of length /30 or shorter with zero host bits` });
    } else {
      if (spec.ipv4.gateway) checkAddress(out, '/spec/ipv4/gateway', spec.ipv4.gateway, 4, subnet);
      spec.ipv4.dns?.forEach((d, i) => checkAddress(out, `/spec/ipv4/dns/${i}`, d, 4));
      if (spec.ipv4.dhcp) {
        checkAddress(out, '/spec/ipv4/dhcp/start', spec.ipv4.dhcp.start, 4, subnet);
        checkAddress(out, '/spec/ipv4/dhcp/end', spec.ipv4.dhcp.end, 4, subnet);
        const s = parseIp(spec.ipv4.dhcp.start)?.value;
        const e = parseIp(spec.ipv4.dhcp.end)?.value;
        if (s !== undefined && e !== undefined && s > e) out.push({ path: '/spec/ipv4/dhcp', message: 'start is after end' });
      }
      const macs = new Set<string>();
      const addrs = new Set<string>();
      spec.ipv4.reservations?.forEach((r, i) => {
        checkAddress(out, `/spec/ipv4/reservations/${i}/address`, r.address, 4, subnet);
        const mac = r.mac.toLowerCase();
        if (macs.has(mac)) out.push({ path: `/spec/ipv4/reservations/${i}/mac`, message: `MAC "${r.mac}" is reserved twice` });
        if (addrs.has(r.address)) out.push({ path: `/spec/ipv4/reservations/${i}/address`, message: `address "${r.address}" is reserved twice` });
        macs.add(mac);
        addrs.add(r.address);
      });
    }
  }
  if (spec.ipv6) {
    const prefix = parsePrefix(spec.ipv6.prefix);
    if (!prefix || prefix.family !== 6) {
      out.push({ path: '/spec/ipv6/prefix', message: `"${spec.ipv6.prefix}" is not an IPv6 CIDR with zero host bits` });
    } else {
      if (spec.ipv6.mode === 'slaac' && prefix.length !== 64)
        out.push({ path: '/spec/ipv6/prefix', message: 'slaac needs a /64 prefix' });
      if (spec.ipv6.gateway) checkAddress(out, '/spec/ipv6/gateway', spec.ipv6.gateway, 6, prefix);
      spec.ipv6.dns?.forEach((d, i) => checkAddress(out, `/spec/ipv6/dns/${i}`, d, 6));
    }
  }
  const gw = spec.gateway;
  if (gw?.mode === 'vm' && !gw.vm) out.push({ path: '/spec/gateway/vm', message: 'gateway mode "vm" needs the name of a VM' });
  if (gw && gw.mode !== 'vm' && gw.vm) out.push({ path: '/spec/gateway/vm', message: `only gateway mode "vm" names a VM, not "${gw.mode}"` });
  return out;
}

function checkNetworkWith(raw: Record<string, unknown>, ctx: CheckContext): ErrorDetail[] {
  const spec = raw as NetworkSpec;
  const out: ErrorDetail[] = [];
  const mine = spec.ipv4 ? parsePrefix(spec.ipv4.subnet) : undefined;
  const mine6 = spec.ipv6 ? parsePrefix(spec.ipv6.prefix) : undefined;
  for (const other of ctx.siblings) {
    const o = other.spec as NetworkSpec;
    const theirs = o.ipv4 ? parsePrefix(o.ipv4.subnet) : undefined;
    if (mine && theirs && prefixesOverlap(mine, theirs))
      out.push({ path: '/spec/ipv4/subnet', message: `overlaps ${o.ipv4!.subnet} of network "${other.name}"` });
    const theirs6 = o.ipv6 ? parsePrefix(o.ipv6.prefix) : undefined;
    if (mine6 && theirs6 && prefixesOverlap(mine6, theirs6))
      out.push({ path: '/spec/ipv6/prefix', message: `overlaps ${o.ipv6!.prefix} of network "${other.name}"` });
  }
  if (spec.gateway?.mode === 'vm' && spec.gateway.vm) {
    const vm = ctx.ref('vm', spec.gateway.vm);
    const nics = ((vm?.spec as { nics?: { network: string }[] } | undefined)?.nics ?? []);
    if (vm && !nics.some((n) => n.network === ctx.name))
      out.push({ path: '/spec/gateway/vm', message: `VM "${spec.gateway.vm}" has no NIC on network "${ctx.name}"` });
  }
  return out;
}

export const networkKind: KindDef = {
  kind: 'network',
  plural: 'networks',
  idPrefix: 'net',
  scope: 'project',
  spec: NetworkSpec,
  status: NetworkStatus,
  read: Network,
  create: NetworkCreate,
  update: updateSchema('network', NetworkSpec),
  references: (raw) => {
    const spec = raw as NetworkSpec;
    const refs: Reference[] = (spec.firewalls ?? []).map((f, i) => ({ kind: 'firewall', name: f, path: `/spec/firewalls/${i}` }));
    if (spec.gateway?.mode === 'vm' && spec.gateway.vm) refs.push({ kind: 'vm', name: spec.gateway.vm, path: '/spec/gateway/vm' });
    return refs;
  },
  checkSpec: checkNetwork,
  checkWith: checkNetworkWith,
  needsSiblings: true,
};

/**
 * What a node needs to build its hosts' networking, served at
 * `GET /v1/nodes/{node}/network`: the networks its VMs use with their VNI and
 * the underlay addresses of the other nodes sharing each, the firewalls
 * attached to its NICs, and the addresses of firewalls that rules name.
 */
export interface HostNetworkView {
  networks: { project: string; name: string; spec: NetworkSpec; vni?: number; peers: string[] }[];
  firewalls: { project: string; name: string; spec: FirewallSpec }[];
  members: { project: string; firewall: string; addresses: string[] }[];
}
