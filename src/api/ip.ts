/** IPv4 and IPv6 addresses and prefixes, parsed to bigints so both families share one arithmetic. */
export interface Prefix {
  family: 4 | 6;
  /** The network address (host bits zero). */
  network: bigint;
  length: number;
}

const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function parseIpv4(text: string): bigint | undefined {
  if (!v4.test(text)) return undefined;
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

export function parseIpv6(text: string): bigint | undefined {
  if (text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  let head = text;
  let tail: bigint[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    const v4part = parseIpv4(text.slice(lastColon + 1));
    if (v4part === undefined) return undefined;
    head = text.slice(0, lastColon + 1) + '0:0';
    tail = [v4part >> 16n, v4part & 0xffffn];
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  const left = parse(halves[0]!);
  const right = halves.length === 2 ? parse(halves[1]!) : [];
  const groups = halves.length === 2 ? left.length + right.length : left.length;
  if (halves.length === 1 ? groups !== 8 : groups > 7) return undefined;
  const words = [...left, ...Array<string>(8 - groups).fill('0'), ...right];
  let value = 0n;
  for (const w of words) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(w)) return undefined;
    value = (value << 16n) | BigInt(parseInt(w, 16));
  }
  if (tail.length) value = (value & ~0xffffffffn) | (tail[0]! << 16n) | tail[1]!;
  return value;
}

export function parseIp(text: string): { family: 4 | 6; value: bigint } | undefined {
  const a = parseIpv4(text);
  if (a !== undefined) return { family: 4, value: a };
  const b = parseIpv6(text);
  return b === undefined ? undefined : { family: 6, value: b };
}

/** Parses "10.0.0.0/24" or "fd00::/64". Host bits must be zero. */
export function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(lenText)) return undefined;
  const length = Number(lenText);
  const bits = ip.family === 4 ? 32 : 128;
  if (length > bits) return undefined;
  const hostMask = (1n << BigInt(bits - length)) - 1n;
  if ((ip.value & hostMask) !== 0n) return undefined;
  return { family: ip.family, network: ip.value, length };
}

function bitsOf(p: { family: 4 | 6 }): number {
  return p.family === 4 ? 32 : 128;
}

export function prefixContains(p: Prefix, ip: { family: 4 | 6; value: bigint }): boolean {
  if (p.family !== ip.family) return false;
  const shift = BigInt(bitsOf(p) - p.length);
  return ip.value >> shift === p.network >> shift;
}

export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  const shorter = a.length <= b.length ? a : b;
  const longer = shorter === a ? b : a;
  return prefixContains(shorter, { family: longer.family, value: longer.network });
}

/** The broadcast (last) address of a prefix. */
export function prefixLast(p: Prefix): bigint {
  return p.network | ((1n << BigInt(bitsOf(p) - p.length)) - 1n);
}

export function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
}

export function formatIpv6(value: bigint): string {
  const words: number[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) words.push(Number((value >> s) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function formatIp(family: 4 | 6, value: bigint): string {
  return family === 4 ? formatIpv4(value) : formatIpv6(value);
}

/** A unicast MAC, lower or upper case, colon separated. */
export const macPattern = '^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$';

export function isUnicastMac(mac: string): boolean {
  return new RegExp(macPattern).test(mac) && (parseInt(mac.slice(0, 2), 16) & 1) === 0;
}
