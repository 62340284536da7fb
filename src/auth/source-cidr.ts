import { parseIp, parsePrefix, prefixContains, type Prefix } from '../api/ip.ts';

/** Parses a CIDR such as "10.0.0.0/8" or "fd00::/64" (host bits zero), or a bare address as a /32 or /128. */
export function parseCidr(text: string): Prefix | undefined {
  if (text.includes('/')) return parsePrefix(text);
  const ip = parseIp(text);
  return ip && { family: ip.family, network: ip.value, length: ip.family === 4 ? 32 : 128 };
}

/** Parses a client address as the socket reports it; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) counts as IPv4. */
export function parseSource(source: string): { family: 4 | 6; value: bigint } | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(source);
  return parseIp(mapped ? mapped[1]! : source);
}

/** Whether a client address lies inside a CIDR. */
export function sourceInCidr(source: string, cidr: string): boolean {
  const p = parseCidr(cidr);
  const ip = parseSource(source);
  return p !== undefined && ip !== undefined && prefixContains(p, ip);
}

/** Whether every address of `inner` lies inside `outer`. */
export function cidrWithin(inner: string, outer: string): boolean {
  const i = parseCidr(inner);
  const o = parseCidr(outer);
  return i !== undefined && o !== undefined && o.length <= i.length && prefixContains(o, { family: i.family, value: i.network });
}
