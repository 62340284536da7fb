import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { ApiError } from '../../api/errors.ts';
import { parseIp, parsePrefix, prefixContains } from '../../api/ip.ts';

/** Options of one server-side download. */
export interface FetchUrlOptions {
  maxRedirects: number;
  /** A declared Content-Length above this is refused before reading. */
  maxBytes: number;
  /** Connect and idle timeout. */
  timeoutMs?: number;
  /** Which resolved addresses may be contacted; default: all but link-local and unspecified ones. */
  allowAddress?: (address: string) => boolean;
}

const deniedByDefault = ['169.254.0.0/16', 'fe80::/10', '0.0.0.0/8', '::/128'].map((p) => parsePrefix(p)!);

/** Link-local (the guests' metadata address lives there) and unspecified addresses are never fetched. */
export function defaultAllowAddress(address: string): boolean {
  const ip = parseIp(address);
  return ip !== undefined && !deniedByDefault.some((p) => prefixContains(p, ip));
}

/** The URL as safe to show: scheme, host and path, no credentials or query. */
export function displayUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * GETs an http(s) URL and resolves with the response body once a 2xx
 * arrives, following at most `maxRedirects` redirects, each of them http(s)
 * only and to an allowed address.
 */
export async function fetchUrl(raw: string, opts: FetchUrlOptions): Promise<{ body: Readable; contentLength?: number }> {
  let url = parseUrl(raw);
  for (let hop = 0; ; hop++) {
    const res = await get(url, opts);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop >= opts.maxRedirects) {
        throw new ApiError('invalid', `Cannot import image from "${displayUrl(url)}": more than ${opts.maxRedirects} redirects`);
      }
      url = parseUrl(new URL(res.headers.location, url).toString());
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw new ApiError('invalid', `Cannot import image from "${displayUrl(url)}": server answered HTTP ${status}`);
    }
    const length = res.headers['content-length'] ? Number(res.headers['content-length']) : undefined;
    if (length !== undefined && length > opts.maxBytes) {
      res.destroy();
      throw new ApiError('too_large', `Cannot import image from "${displayUrl(url)}": ${length} bytes is above the limit of "${opts.maxBytes}" bytes`);
    }
    return length !== undefined && Number.isSafeInteger(length) ? { body: res, contentLength: length } : { body: res };
  }
}

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ApiError('invalid', 'Cannot import image: the URL is not valid', { details: [{ path: 'url', message: 'not a URL' }] });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ApiError('invalid', `Cannot import image: scheme "${url.protocol.slice(0, -1)}" is not http or https`, {
      details: [{ path: 'url', message: 'only http and https are fetched' }],
    });
  }
  return url;
}

function get(url: URL, opts: FetchUrlOptions): Promise<http.IncomingMessage> {
  const allow = opts.allowAddress ?? defaultAllowAddress;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !allow(host)) return Promise.reject(forbiddenAddress(url, host));
  const lookup = ((hostname: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return cb(err);
      const bad = addresses.find((a) => !allow(a.address));
      if (bad) return cb(forbiddenAddress(url, bad.address));
      if (options.all) return cb(null, addresses);
      cb(null, addresses[0]!.address, addresses[0]!.family);
    });
  }) as unknown as LookupFunction;
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(url, { lookup, timeout: opts.timeoutMs ?? 30_000, headers: { 'user-agent': 'crowdcloud' } }, (res) => {
      res.setTimeout(opts.timeoutMs ?? 30_000, () =>
        res.destroy(new ApiError('unavailable', `Cannot import image from "${displayUrl(url)}": the transfer stalled`)),
      );
      resolve(res);
    });
    req.on('timeout', () => req.destroy(new ApiError('unavailable', `Cannot import image from "${displayUrl(url)}": timed out`)));
    req.on('error', (e) =>
      reject(e instanceof ApiError ? e : new ApiError('unavailable', `Cannot import image from "${displayUrl(url)}": ${e.message}`, { cause: e })),
    );
  });
}

function forbiddenAddress(url: URL, address: string): ApiError {
  return new ApiError('forbidden', `Cannot import image from "${displayUrl(url)}": address "${address}" may not be fetched`);
}
