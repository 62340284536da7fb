import { parseIp } from '../api/ip.ts';

/** Where the server listens. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `HOST:PORT`, `[V6]:PORT` or `:PORT` (every interface). */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`Invalid listen address "${text}": expected HOST:PORT, e.g. 127.0.0.1:7470 or [::1]:7470`);
  const host = m[1] ?? (m[2] || '0.0.0.0');
  if (m[1] !== undefined && parseIp(host)?.family !== 6) throw new Error(`Invalid listen address "${text}": "${host}" is not an IPv6 address`);
  return { host, port };
}

/** Whether only this machine can reach the address: plain HTTP is allowed there and nowhere else. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const ip = parseIp(host.replace(/^::ffff:/i, ''));
  if (!ip) return false;
  return ip.family === 4 ? ip.value >> 24n === 127n : ip.value === 1n;
}

/** The URL clients use for a listening address; wildcard binds are shown as this host's loopback name. */
export function serverUrl(addr: ListenAddress, tls: boolean): string {
  const host = addr.host === '0.0.0.0' || addr.host === '::' ? 'localhost' : addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  return `${tls ? 'https' : 'http'}://${host}:${addr.port}`;
}
