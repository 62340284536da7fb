import { formatIp, parseIp } from '../api/ip.ts';

/** The network a guest address sits in, as CIDR (`10.0.0.5`/24 → `10.0.0.0/24`); EC2 subnet blocks need it. */
export function networkCidr(address: string, prefixLength: number): string {
  const ip = parseIp(address);
  if (!ip) throw new Error(`Cannot compute the network of "${address}": not an IP address`);
  const bits = ip.family === 4 ? 32 : 128;
  const host = (1n << BigInt(bits - prefixLength)) - 1n;
  return `${formatIp(ip.family, ip.value & ~host)}/${prefixLength}`;
}

/** A prefix length as a netmask (`24` → `255.255.255.0`, `64` → `ffff:ffff:ffff:ffff::`), the form OpenStack's network_data.json uses. */
export function netmask(family: 4 | 6, prefixLength: number): string {
  const bits = family === 4 ? 32 : 128;
  const all = (1n << BigInt(bits)) - 1n;
  return formatIp(family, all & ~((1n << BigInt(bits - prefixLength)) - 1n));
}

