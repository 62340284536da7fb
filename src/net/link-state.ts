import { readFileSync } from 'node:fs';
import type { Runner } from '../base/runner.ts';
import { parseInterfaceAddress, prefixText } from './ip-address.ts';

/** What the planner needs to know about one existing interface. */
export interface LinkInfo {
  name: string;
  /** `bridge`, `vxlan`, `tun`, `veth`, `ifb`… or `` for a plain device. */
  kind: string;
  master?: string;
  mtu: number;
  up: boolean;
  /** The ownership mark crowdcloud sets (`crowd:<role>:<network>`). */
  alias?: string;
  /** Interface addresses ("10.0.0.1/24"); autoconfigured ones left out (the kernel makes those). */
  addresses: string[];
  bridge?: { stpState: number; forwardDelay: number; nfCallIptables: number; nfCallIp6tables: number };
  vxlan?: { vni: number; local?: string; port: number; learning: boolean; underlay?: string };
  /** Owner uid of a tap, when set. */
  tapOwner?: number;
}

/** The host's interfaces and the all-zero FDB entries (head-end replication targets) of each VXLAN device. */
export interface LinkState {
  links: Map<string, LinkInfo>;
  floods: Map<string, string[]>;
  /** net.ipv4.ip_forward: the host routes for `gateway: host` networks. */
  ipv4Forwarding: boolean;
}

interface IpJsonLink {
  ifname: string;
  flags?: string[];
  mtu: number;
  master?: string;
  ifalias?: string;
  link?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
  addr_info?: { family: string; local: string; prefixlen: number; scope?: string; dynamic?: boolean }[];
}

/** Parses `ip -j -d addr show`; `uidOf` turns a tap owner name into its uid. */
export function parseIpLinks(json: string, uidOf: (user: string) => number | undefined = () => undefined): Map<string, LinkInfo> {
  const links = new Map<string, LinkInfo>();
  for (const l of JSON.parse(json) as IpJsonLink[]) {
    const data = l.linkinfo?.info_data ?? {};
    const kind = l.linkinfo?.info_kind ?? '';
    const info: LinkInfo = {
      name: l.ifname,
      kind,
      mtu: l.mtu,
      up: (l.flags ?? []).includes('UP'),
      addresses: (l.addr_info ?? [])
        .filter((a) => !a.dynamic)
        .map((a) => parseInterfaceAddress(`${a.local}/${a.prefixlen}`))
        .filter((a) => a !== undefined)
        .map((a) => `${a.address}/${a.length}`),
    };
    if (l.master) info.master = l.master;
    if (l.ifalias) info.alias = l.ifalias;
    if (kind === 'bridge') {
      info.bridge = {
        stpState: Number(data.stp_state ?? 0),
        forwardDelay: Number(data.forward_delay ?? 0),
        nfCallIptables: Number(data.nf_call_iptables ?? 0),
        nfCallIp6tables: Number(data.nf_call_ip6tables ?? 0),
      };
    }
    if (kind === 'vxlan') {
      info.vxlan = { vni: Number(data.id), port: Number(data.port), learning: data.learning !== false };
      const local = typeof data.local === 'string' ? data.local : typeof data.local6 === 'string' ? data.local6 : undefined;
      if (local) info.vxlan.local = prefixText(parseInterfaceAddress(`${local}/${local.includes(':') ? 128 : 32}`)!);
      if (typeof data.link === 'string') info.vxlan.underlay = data.link;
    }
    if (kind === 'tun' && data.user !== undefined) {
      const user = String(data.user);
      const uid = /^\d+$/.test(user) ? Number(user) : uidOf(user);
      if (uid !== undefined) info.tapOwner = uid;
    }
    links.set(l.ifname, info);
  }
  return links;
}

/** Parses `bridge -j fdb show dev VX` into the destinations of its all-zero entries. */
export function parseFloodEntries(json: string): string[] {
  const entries = JSON.parse(json) as { mac: string; dst?: string }[];
  return entries
    .filter((e) => e.mac === '00:00:00:00:00:00' && e.dst)
    .map((e) => prefixText(parseInterfaceAddress(`${e.dst}/${e.dst!.includes(':') ? 128 : 32}`)!))
    .sort();
}

function passwdUid(user: string): number | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${user}:`));
    const uid = line?.split(':')[2];
    return uid === undefined ? undefined : Number(uid);
  } catch {
    return undefined;
  }
}

/** Reads the links and the flood lists of crowdcloud's VXLAN devices. */
export async function readLinkState(runner: Runner): Promise<LinkState> {
  const { stdout } = await runner.run({ argv: ['ip', '-j', '-d', 'addr', 'show'] });
  const links = parseIpLinks(stdout, passwdUid);
  const floods = new Map<string, string[]>();
  for (const l of links.values()) {
    if (l.kind !== 'vxlan' || !l.alias?.startsWith('crowd:')) continue;
    const fdb = await runner.run({ argv: ['bridge', '-j', 'fdb', 'show', 'dev', l.name] });
    floods.set(l.name, parseFloodEntries(fdb.stdout || '[]'));
  }
  const forwarding = await runner.run({ argv: ['sysctl', '-n', 'net.ipv4.ip_forward'] });
  return { links, floods, ipv4Forwarding: forwarding.stdout.trim() === '1' };
}
