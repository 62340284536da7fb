import { isAbsolute } from 'node:path';
import { ipv4Netmask, normalizeMac, parseIpAddress, parseIpPrefix } from './ip-address.ts';
import { isInterfaceName } from './interface-name.ts';

/** An approved MAC/address pair: the only leases the network hands out when `staticOnly`. */
export interface DnsmasqHost {
  mac: string;
  ipv4?: string;
  ipv6?: string;
  hostname?: string;
}

/** One network's DHCP/RA service on one host. */
export interface DnsmasqOptions {
  /** Names the files under runDir. */
  network: string;
  bridge: string;
  runDir: string;
  /** DNS port; 0 (no DNS at all) unless asked. */
  dnsPort?: number;
  mtu?: number;
  ipv4?: { subnet: string; router?: string; dns?: string[]; range?: { start: string; end: string }; leaseSeconds?: number };
  ipv6?: {
    mode: 'slaac' | 'dhcpv6' | 'static';
    prefix: string;
    dns?: string[];
    range?: { start: string; end: string };
    /** Advertise the host as default router (only for `gateway: host`). */
    router?: boolean;
  };
  hosts: DnsmasqHost[];
  /** Serve only the MACs in `hosts`: unknown clients are ignored. */
  staticOnly: boolean;
}

/** Where one network's dnsmasq keeps its files. */
export function dnsmasqPaths(runDir: string, network: string) {
  const base = `${runDir}/${network}`;
  return { config: `${base}.conf`, hosts: `${base}.hosts`, leases: `${base}.leases`, pid: `${base}.pid`, log: `${base}.log` };
}

function fail(opts: DnsmasqOptions, message: string): never {
  throw new Error(`Cannot render dnsmasq for network "${opts.network}": ${message}`);
}

function address(opts: DnsmasqOptions, text: string, family: 4 | 6, what: string): string {
  const p = parseIpAddress(text);
  if (!p || p.family !== family) fail(opts, `${what} "${text}" is not an IPv${family} address`);
  return p.address;
}

function ipv4Lines(opts: DnsmasqOptions, lease: number): string[] {
  const v4 = opts.ipv4!;
  const subnet = parseIpPrefix(v4.subnet);
  if (!subnet || subnet.family !== 4) fail(opts, `subnet "${v4.subnet}" is not an IPv4 CIDR`);
  const mask = ipv4Netmask(subnet.length);
  const range = v4.range
    ? `${address(opts, v4.range.start, 4, 'range start')},${address(opts, v4.range.end, 4, 'range end')}`
    : `${subnet.address},static`;
  const router = v4.router !== undefined ? `,${address(opts, v4.router, 4, 'router')}` : '';
  const dns = (v4.dns ?? []).map((d) => `,${address(opts, d, 4, 'DNS server')}`).join('');
  return [
    `dhcp-range=${range},${mask},${lease}`,
    `dhcp-option=option:router${router}`,
    `dhcp-option=option:dns-server${dns}`,
    ...(opts.mtu !== undefined ? [`dhcp-option=option:mtu,${opts.mtu}`] : []),
  ];
}

function ipv6Lines(opts: DnsmasqOptions, lease: number): string[] {
  const v6 = opts.ipv6!;
  const prefix = parseIpPrefix(v6.prefix);
  if (!prefix || prefix.family !== 6) fail(opts, `prefix "${v6.prefix}" is not an IPv6 CIDR`);
  const dns = (v6.dns ?? []).map((d) => address(opts, d, 6, 'DNS server'));
  const cons = `::,constructor:${opts.bridge}`;
  let range: string | undefined;
  switch (v6.mode) {
    case 'slaac':
      range = `${cons},${dns.length ? 'ra-stateless' : 'ra-only'},${prefix.length},${lease}`;
      break;
    case 'dhcpv6':
      range = v6.range
        ? `${address(opts, v6.range.start, 6, 'range start')},${address(opts, v6.range.end, 6, 'range end')},${prefix.length},${lease}`
        : `${cons},static,${prefix.length},${lease}`;
      break;
    case 'static':
      break;
    default:
      fail(opts, `IPv6 mode "${String(v6.mode)}" is not slaac, dhcpv6 or static`);
  }
  const mtu = opts.mtu !== undefined ? `mtu:${opts.mtu},` : '';
  return [
    'enable-ra',
    `ra-param=${opts.bridge},${mtu}60${v6.router ? '' : ',0'}`,
    ...(range ? [`dhcp-range=${range}`] : []),
    ...(dns.length ? [`dhcp-option=option6:dns-server,${dns.map((d) => `[${d}]`).join(',')}`] : []),
  ];
}

function hostLines(opts: DnsmasqOptions): string[] {
  const seen = new Set<string>();
  const lines = opts.hosts.map((h) => {
    const mac = normalizeMac(h.mac);
    const fields = [mac];
    if (h.ipv4 !== undefined) fields.push(address(opts, h.ipv4, 4, `address of ${mac}`));
    if (h.ipv6 !== undefined) fields.push(`[${address(opts, h.ipv6, 6, `address of ${mac}`)}]`);
    if (h.hostname !== undefined) {
      if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(h.hostname)) fail(opts, `hostname "${h.hostname}" is not a DNS label`);
      fields.push(h.hostname);
    }
    for (const key of fields.slice(0, h.hostname !== undefined ? -1 : undefined)) {
      if (seen.has(key)) fail(opts, `"${key}" appears in two static leases`);
      seen.add(key);
    }
    return fields.join(',');
  });
  return lines.sort();
}

/**
 * Pure: dnsmasq's config for one network on one host, and its static-lease
 * file (kept apart so lease changes need only a SIGHUP, not a restart).
 */
export function renderDnsmasq(opts: DnsmasqOptions): { config: string; hosts: string } {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(opts.network)) fail(opts, 'the name is not a DNS label');
  if (!isInterfaceName(opts.bridge)) fail(opts, `bridge "${opts.bridge}" is not a valid interface name`);
  if (!isAbsolute(opts.runDir) || /[\s,#]/.test(opts.runDir)) fail(opts, `run directory "${opts.runDir}" must be an absolute path without spaces, commas or #`);
  const port = opts.dnsPort ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(opts, `DNS port ${port} is outside 0-65535`);
  if (opts.mtu !== undefined && (!Number.isInteger(opts.mtu) || opts.mtu < 576 || opts.mtu > 9000)) fail(opts, `MTU ${opts.mtu} is outside 576-9000`);
  const lease = opts.ipv4?.leaseSeconds ?? 3600;
  if (!Number.isInteger(lease) || lease < 120) fail(opts, `lease time ${lease} is not a whole number of seconds of at least 120`);
  const paths = dnsmasqPaths(opts.runDir, opts.network);
  const config = [
    `# crowdcloud dnsmasq for network "${opts.network}" on bridge "${opts.bridge}": generated, do not edit`,
    `interface=${opts.bridge}`,
    'bind-interfaces',
    'except-interface=lo',
    `port=${port}`,
    'no-resolv',
    'no-hosts',
    `pid-file=${paths.pid}`,
    `dhcp-leasefile=${paths.leases}`,
    `dhcp-hostsfile=${paths.hosts}`,
    `log-facility=${paths.log}`,
    'dhcp-authoritative',
    ...(opts.staticOnly ? ['dhcp-ignore=tag:!known'] : []),
    ...(opts.ipv4 ? ipv4Lines(opts, lease) : []),
    ...(opts.ipv6 ? ipv6Lines(opts, lease) : []),
    '',
  ].join('\n');
  const hosts = hostLines(opts);
  return { config, hosts: hosts.length ? `${hosts.join('\n')}\n` : '' };
}
