import { isIPv4, isIPv6 } from 'node:net';

/** An address or prefix in canonical text, so renderers and state comparisons agree on spelling. */
export interface IpPrefix {
  family: 4 | 6;
  /** Canonical address text (lower case, IPv6 compressed). */
  address: string;
  length: number;
}

function v6Words(text: string): number[] {
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (s: string | undefined) => (s ? s.split(':') : []);
  const words: number[] = [];
  for (const part of [...parse(head), ...(tail === undefined ? [] : ['::']), ...parse(tail)]) {
    if (part === '::') continue;
    if (part.includes('.')) {
      const b = part.split('.').map(Number) as [number, number, number, number];
      words.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
    } else words.push(parseInt(part, 16));
  }
  if (tail === undefined) return words;
  const left = parse(head).length;
  const right = words.length - left;
  return [...words.slice(0, left), ...Array<number>(8 - left - right).fill(0), ...words.slice(left)];
}

function v6Value(text: string): bigint {
  return v6Words(text).reduce((acc, w) => (acc << 16n) | BigInt(w), 0n);
}

function v4Value(text: string): bigint {
  return text.split('.').reduce((acc, p) => (acc << 8n) | BigInt(Number(p)), 0n);
}

/** An IPv6 address as one 0x-prefixed 128-bit number (for raw payload matches in nftables). */
export function ipv6Hex(text: string): string {
  return `0x${v6Value(text).toString(16).padStart(32, '0')}`;
}

/** Canonical RFC 5952 text of an IPv6 value. */
export function formatIpv6(value: bigint): string {
  const words = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
}

/** Parses an address ("10.0.0.5") or a prefix ("10.0.0.0/24"); undefined when invalid or host bits are set. */
export function parseIpPrefix(text: string): IpPrefix | undefined {
  const [addr = '', len, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : undefined;
  if (!family) return undefined;
  const bits = family === 4 ? 32 : 128;
  if (len !== undefined && !/^\d{1,3}$/.test(len)) return undefined;
  const length = len === undefined ? bits : Number(len);
  if (length > bits) return undefined;
  const value = family === 4 ? v4Value(addr) : v6Value(addr);
  if ((value & ((1n << BigInt(bits - length)) - 1n)) !== 0n) return undefined;
  return { family, address: family === 4 ? formatIpv4(value) : formatIpv6(value), length };
}

/** Parses a single address (no prefix length). */
export function parseIpAddress(text: string): IpPrefix | undefined {
  return text.includes('/') ? undefined : parseIpPrefix(text);
}

/** Parses an interface address "10.0.0.1/24" whose host bits are set on purpose. */
export function parseInterfaceAddress(text: string): IpPrefix | undefined {
  const [addr = '', len] = text.split('/');
  const ip = parseIpAddress(addr);
  if (!ip || len === undefined || !/^\d{1,3}$/.test(len) || Number(len) > (ip.family === 4 ? 32 : 128)) return undefined;
  return { ...ip, length: Number(len) };
}

/** Text of a prefix: the bare address for a full-length prefix, else address/length. */
export function prefixText(p: IpPrefix): string {
  return p.length === (p.family === 4 ? 32 : 128) ? p.address : `${p.address}/${p.length}`;
}

/** The network part of an interface address, e.g. 10.0.0.1/24 → 10.0.0.0/24. */
export function networkOf(p: IpPrefix): IpPrefix {
  const bits = p.family === 4 ? 32 : 128;
  const value = p.family === 4 ? v4Value(p.address) : v6Value(p.address);
  const net = (value >> BigInt(bits - p.length)) << BigInt(bits - p.length);
  return { family: p.family, address: p.family === 4 ? formatIpv4(net) : formatIpv6(net), length: p.length };
}

/** The dotted netmask of an IPv4 prefix length (dnsmasq wants it). */
export function ipv4Netmask(length: number): string {
  return formatIpv4(((1n << 32n) - 1n) ^ ((1n << BigInt(32 - length)) - 1n));
}

/** A lower-case colon-separated MAC. */
export const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Lower-cases and checks a MAC; throws on a malformed one. */
export function normalizeMac(mac: string): string {
  const m = mac.toLowerCase();
  if (!macPattern.test(m)) throw new Error(`Cannot use MAC "${mac}": not six colon-separated hex bytes`);
  return m;
}

/** The address SLAAC gives a MAC in a /64 (modified EUI-64), so anti-spoofing can allow it in advance. */
export function eui64Address(prefix: string, mac: string): string {
  const p = parseIpPrefix(prefix);
  if (!p || p.family !== 6 || p.length !== 64) throw new Error(`Cannot derive a SLAAC address in "${prefix}": not an IPv6 /64`);
  const b = normalizeMac(mac).split(':').map((h) => parseInt(h, 16));
  const eui = [b[0]! ^ 0x02, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
  let value = v6Value(p.address);
  for (let i = 0; i < 8; i++) value |= BigInt(eui[i]!) << BigInt(56 - 8 * i);
  return formatIpv6(value);
}

/** The fe80::/64 EUI-64 address a guest derives from its MAC. */
export function linkLocalFromMac(mac: string): string {
  return eui64Address('fe80::/64', mac);
}
