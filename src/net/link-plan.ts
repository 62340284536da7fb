import type { HostStep } from './host-step.ts';
import { parseInterfaceAddress, parseIpAddress, prefixText } from './ip-address.ts';
import type { LinkInfo, LinkState } from './link-state.ts';
import { compareText } from './compare-text.ts';
import { isInterfaceName } from './interface-name.ts';

/** A VM NIC's host side: a tap crowdcloud creates, or an interface that already exists (a veth in tests). */
export type PortLink = { kind: 'tap'; name: string; owner?: number } | { kind: 'existing'; name: string };

/** The VXLAN device of a network: unicast head-end replication to exactly `remotes`. */
export interface VxlanLink {
  name: string;
  vni: number;
  /** This host's underlay address. */
  local: string;
  /** Underlay addresses of the other hosts that have this network. */
  remotes: string[];
  /** UDP port, 4789 by default. */
  port?: number;
  /** Underlay device to bind to. */
  underlay?: string;
}

/** Everything one network needs on this host. A network absent from the desired list is removed. */
export interface NetworkLinks {
  network: string;
  bridge: string;
  mtu?: number;
  /** Addresses the host holds on the bridge ("10.0.0.1/24"): gateway, DHCP server identity. */
  addresses?: string[];
  vxlan?: VxlanLink;
  ports: PortLink[];
  /** The host routes for this network (`gateway: host`): IPv4 forwarding gets turned on (and left on). */
  routed?: boolean;
}

const zeroMac = '00:00:00:00:00:00';
const aliasOf = (role: 'bridge' | 'vxlan' | 'tap', network: string) => `crowd:${role}:${network}`;
const isOurs = (l: LinkInfo | undefined, role: string) => l?.alias?.startsWith(`crowd:${role}:`) ?? false;

function checkDesired(desired: NetworkLinks[]): void {
  const names = new Set<string>();
  const claim = (name: string, what: string) => {
    if (!isInterfaceName(name)) throw new Error(`Cannot plan ${what} "${name}": not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`);
    if (names.has(name)) throw new Error(`Cannot plan ${what} "${name}": the name is used twice`);
    names.add(name);
  };
  for (const net of desired) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(net.network)) throw new Error(`Cannot plan network "${net.network}": not a DNS label`);
    claim(net.bridge, 'bridge');
    if (net.mtu !== undefined && (!Number.isInteger(net.mtu) || net.mtu < 576 || net.mtu > 9000))
      throw new Error(`Cannot plan bridge "${net.bridge}": MTU ${net.mtu} is outside 576-9000`);
    for (const a of net.addresses ?? [])
      if (!parseInterfaceAddress(a)) throw new Error(`Cannot plan bridge "${net.bridge}": "${a}" is not an address with a prefix length`);
    const vx = net.vxlan;
    if (vx) {
      claim(vx.name, 'VXLAN device');
      if (!Number.isInteger(vx.vni) || vx.vni < 1 || vx.vni > 16777215) throw new Error(`Cannot plan VXLAN device "${vx.name}": VNI ${vx.vni} is outside 1-16777215`);
      if (!parseIpAddress(vx.local)) throw new Error(`Cannot plan VXLAN device "${vx.name}": local "${vx.local}" is not an address`);
      for (const r of vx.remotes)
        if (!parseIpAddress(r)) throw new Error(`Cannot plan VXLAN device "${vx.name}": remote "${r}" is not an address`);
    }
    for (const p of net.ports) {
      claim(p.name, p.kind === 'tap' ? 'tap' : 'port');
      if (p.kind === 'tap' && p.owner !== undefined && (!Number.isInteger(p.owner) || p.owner < 0))
        throw new Error(`Cannot plan tap "${p.name}": owner ${p.owner} is not a uid`);
    }
  }
}

/** Steps that make sure `name` is up with `mtu` and attached to `master`. */
function settle(link: LinkInfo | undefined, name: string, want: { mtu?: number; master?: string }): HostStep[] {
  const steps: HostStep[] = [];
  if (want.mtu !== undefined && link?.mtu !== want.mtu) {
    const undo = link ? [['ip', 'link', 'set', 'dev', name, 'mtu', String(link.mtu)]] : [];
    steps.push({ argv: ['ip', 'link', 'set', 'dev', name, 'mtu', String(want.mtu)], undo });
  }
  if (want.master !== undefined && link?.master !== want.master) {
    const back = link?.master ? ['master', link.master] : ['nomaster'];
    steps.push({ argv: ['ip', 'link', 'set', 'dev', name, 'master', want.master], undo: link ? [['ip', 'link', 'set', 'dev', name, ...back]] : [] });
  }
  if (!link?.up) steps.push({ argv: ['ip', 'link', 'set', 'dev', name, 'up'], undo: link ? [['ip', 'link', 'set', 'dev', name, 'down']] : [] });
  return steps;
}

function created(name: string, argv: string[], alias: string): HostStep[] {
  return [
    { argv, undo: [['ip', 'link', 'del', name]] },
    { argv: ['ip', 'link', 'set', 'dev', name, 'alias', alias], undo: [] },
  ];
}

function planBridge(net: NetworkLinks, link: LinkInfo | undefined): HostStep[] {
  if (link && (link.kind !== 'bridge' || !isOurs(link, 'bridge')))
    throw new Error(`Cannot use bridge "${net.bridge}": an interface of that name exists and is not crowdcloud's`);
  const steps: HostStep[] = [];
  const mtu = net.mtu !== undefined ? ['mtu', String(net.mtu)] : [];
  const opts = ['stp_state', '0', 'forward_delay', '0', 'nf_call_iptables', '1', 'nf_call_ip6tables', '1'];
  if (!link) {
    steps.push(...created(net.bridge, ['ip', 'link', 'add', 'name', net.bridge, ...mtu, 'type', 'bridge', ...opts], aliasOf('bridge', net.network)));
    // The host never takes addresses or routes from router advertisements on a guest segment (a router VM sends them).
    steps.push({ argv: ['sysctl', '-qw', `net/ipv6/conf/${net.bridge}/accept_ra=0`], undo: [] });
  }
  else {
    const b = link.bridge!;
    if (b.stpState !== 0 || b.forwardDelay !== 0 || b.nfCallIptables !== 1 || b.nfCallIp6tables !== 1) {
      const old = ['stp_state', b.stpState, 'forward_delay', b.forwardDelay, 'nf_call_iptables', b.nfCallIptables, 'nf_call_ip6tables', b.nfCallIp6tables].map(String);
      steps.push({ argv: ['ip', 'link', 'set', 'dev', net.bridge, 'type', 'bridge', ...opts], undo: [['ip', 'link', 'set', 'dev', net.bridge, 'type', 'bridge', ...old]] });
    }
    if (link.alias !== aliasOf('bridge', net.network))
      steps.push({ argv: ['ip', 'link', 'set', 'dev', net.bridge, 'alias', aliasOf('bridge', net.network)], undo: [['ip', 'link', 'set', 'dev', net.bridge, 'alias', link.alias!]] });
  }
  steps.push(...settle(link, net.bridge, { mtu: link ? net.mtu : undefined }));
  const want = (net.addresses ?? []).map((a) => { const p = parseInterfaceAddress(a)!; return `${p.address}/${p.length}`; }).sort();
  const have = link?.addresses ?? [];
  for (const a of want.filter((x) => !have.includes(x)))
    // A link-local service address (fe80::a9fe:a9fe) must be usable at once: no duplicate address detection.
    steps.push({ argv: ['ip', 'addr', 'add', a, 'dev', net.bridge, ...(a.startsWith('fe80:') ? ['nodad'] : [])], undo: [['ip', 'addr', 'del', a, 'dev', net.bridge]] });
  // The kernel gives every bridge an IPv6 link-local address; only ones we were asked for are managed.
  for (const a of have.filter((x) => !want.includes(x) && !x.startsWith('fe80:')))
    steps.push({ argv: ['ip', 'addr', 'del', a, 'dev', net.bridge], undo: [['ip', 'addr', 'add', a, 'dev', net.bridge]] });
  return steps;
}

function planVxlan(net: NetworkLinks, vx: VxlanLink, state: LinkState): HostStep[] {
  let link = state.links.get(vx.name);
  if (link && (link.kind !== 'vxlan' || !isOurs(link, 'vxlan')))
    throw new Error(`Cannot use VXLAN device "${vx.name}": an interface of that name exists and is not crowdcloud's`);
  const local = prefixText(parseIpAddress(vx.local)!);
  const port = vx.port ?? 4789;
  const steps: HostStep[] = [];
  const v = link?.vxlan;
  if (link && v && (v.vni !== vx.vni || v.local !== local || v.port !== port || v.learning || v.underlay !== vx.underlay)) {
    steps.push({ argv: ['ip', 'link', 'del', vx.name], undo: [] });
    link = undefined;
  }
  if (!link) {
    const mtu = net.mtu !== undefined ? ['mtu', String(net.mtu)] : [];
    const dev = vx.underlay ? ['dev', vx.underlay] : [];
    const argv = ['ip', 'link', 'add', 'name', vx.name, ...mtu, 'type', 'vxlan', 'id', String(vx.vni), 'local', local, 'dstport', String(port), 'nolearning', ...dev];
    steps.push(...created(vx.name, argv, aliasOf('vxlan', net.network)));
  }
  steps.push(...settle(link, vx.name, { mtu: link ? net.mtu : undefined, master: net.bridge }));
  const have = link ? (state.floods.get(vx.name) ?? []) : [];
  const want = [...new Set(vx.remotes.map((r) => prefixText(parseIpAddress(r)!)))].filter((r) => r !== local).sort();
  const fdb = (verb: string, dst: string) => ['bridge', 'fdb', verb, zeroMac, 'dev', vx.name, 'dst', dst];
  for (const r of want.filter((x) => !have.includes(x))) steps.push({ argv: fdb('append', r), undo: [fdb('del', r)] });
  for (const r of have.filter((x) => !want.includes(x))) steps.push({ argv: fdb('del', r), undo: [fdb('append', r)] });
  return steps;
}

function planPort(net: NetworkLinks, port: PortLink, state: LinkState): HostStep[] {
  let link = state.links.get(port.name);
  const steps: HostStep[] = [];
  if (port.kind === 'existing') {
    if (!link) throw new Error(`Cannot attach interface "${port.name}" to bridge "${net.bridge}": it does not exist`);
  } else {
    if (link && (link.kind !== 'tun' || !isOurs(link, 'tap')))
      throw new Error(`Cannot use tap "${port.name}": an interface of that name exists and is not crowdcloud's`);
    if (link && link.tapOwner !== port.owner) {
      steps.push({ argv: ['ip', 'link', 'del', port.name], undo: [] });
      link = undefined;
    }
    if (!link) {
      const user = port.owner !== undefined ? ['user', String(port.owner)] : [];
      steps.push(...created(port.name, ['ip', 'tuntap', 'add', 'dev', port.name, 'mode', 'tap', ...user], aliasOf('tap', net.network)));
    }
  }
  steps.push(...settle(link, port.name, { mtu: net.mtu, master: net.bridge }));
  return steps;
}

/** Steps that take what is no longer wanted away: our devices are deleted, foreign ports only detached. */
function planRemovals(desired: NetworkLinks[], state: LinkState): HostStep[] {
  const wanted = new Set(desired.flatMap((n) => [n.bridge, ...(n.vxlan ? [n.vxlan.name] : []), ...n.ports.map((p) => p.name)]));
  const ourBridges = new Set([...state.links.values()].filter((l) => l.kind === 'bridge' && isOurs(l, 'bridge')).map((l) => l.name));
  const steps: HostStep[] = [];
  const sorted = [...state.links.values()].sort((a, b) => compareText(a.name, b.name));
  for (const l of sorted) {
    if (wanted.has(l.name) || ourBridges.has(l.name)) continue;
    if (isOurs(l, 'tap') || isOurs(l, 'vxlan')) steps.push({ argv: ['ip', 'link', 'del', l.name], undo: [] });
    else if (l.master && ourBridges.has(l.master))
      steps.push({ argv: ['ip', 'link', 'set', 'dev', l.name, 'nomaster'], undo: [['ip', 'link', 'set', 'dev', l.name, 'master', l.master]] });
  }
  for (const name of [...ourBridges].sort()) if (!wanted.has(name)) steps.push({ argv: ['ip', 'link', 'del', name], undo: [] });
  return steps;
}

/**
 * Pure: the `ip`/`bridge` commands that turn `state` into `desired` — a bridge
 * per network (no STP, forward delay 0), a VXLAN port with exactly the given
 * flood destinations, the NIC ports; then removal of whatever crowdcloud owns
 * and no longer needs. Empty when the host already matches.
 */
export function planLinks(desired: NetworkLinks[], state: LinkState): HostStep[] {
  checkDesired(desired);
  const steps: HostStep[] = [];
  for (const net of [...desired].sort((a, b) => compareText(a.bridge, b.bridge))) {
    steps.push(...planBridge(net, state.links.get(net.bridge)));
    if (net.vxlan) steps.push(...planVxlan(net, net.vxlan, state));
    for (const port of [...net.ports].sort((a, b) => compareText(a.name, b.name))) steps.push(...planPort(net, port, state));
  }
  if (desired.some((n) => n.routed) && !state.ipv4Forwarding)
    steps.push({ argv: ['sysctl', '-w', 'net.ipv4.ip_forward=1'], undo: [['sysctl', '-w', 'net.ipv4.ip_forward=0']] });
  return [...steps, ...planRemovals(desired, state)];
}
