import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import { ApiError } from '../api/errors.ts';
import { fingerprintOf } from '../base/fingerprint.ts';
import { PinMismatchError } from '../base/pinned-fetch.ts';

/** The WebSocket URL of a path on the server (`http:` → `ws:`, `https:` → `wss:`). */
export function webSocketUrl(server: string, path: string): string {
  const u = new URL(path, server.replace(/\/+$/, '') + '/');
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

/** A TLS connection whose certificate matched the pin, made before a single byte of the request is sent. */
function pinnedTls(url: URL, fingerprint: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const port = Number(url.port || 443);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, ...(/^[\d.:]+$/.test(host) ? {} : { servername: host }) });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const got = fingerprintOf(socket.getPeerCertificate().raw ?? new Uint8Array());
      if (got === fingerprint) return resolve(socket);
      socket.destroy();
      reject(new PinMismatchError(`${host}:${port}`, got, fingerprint));
    });
  });
}

/**
 * Opens a WebSocket to the server (the console); with a pinned fingerprint
 * the TLS certificate is checked before the token goes out. Resolves once
 * open, paused (call `resume()` after adding listeners); a refused upgrade
 * rejects with the server's ApiError. The agent has
 * the same function in src/agent/tunnel-socket.ts (leaves share no code).
 */
export async function openWebSocket(url: string, opts: { authorization?: string; fingerprint?: string; signal?: AbortSignal }): Promise<WebSocket> {
  const target = new URL(url);
  const tls = target.protocol === 'wss:' && opts.fingerprint ? await pinnedTls(target, opts.fingerprint) : undefined;
  const ws = new WebSocket(url, {
    headers: opts.authorization ? { authorization: opts.authorization } : {},
    ...(tls ? { createConnection: () => tls } : {}),
  });
  return new Promise((resolve, reject) => {
    const abort = () => ws.terminate();
    opts.signal?.addEventListener('abort', abort, { once: true });
    const settle = (fn: () => void) => {
      opts.signal?.removeEventListener('abort', abort);
      fn();
    };
    // Paused until the caller listens: the first message may arrive with the upgrade answer.
    ws.once('open', () => settle(() => resolve((ws.pause(), ws))));
    ws.once('error', (e) => settle(() => reject(new ApiError('unavailable', `Cannot reach server "${target.host}": ${e.message}`))));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8').slice(0, 4096)));
      res.on('end', () => {
        ws.terminate();
        settle(() => reject(refusal(res.statusCode ?? 0, body)));
      });
    });
  });
}

/** The API error of a refused upgrade, from its status and body. */
function refusal(status: number, body: string): ApiError {
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = null;
  }
  return ApiError.fromBody(status, parsed);
}
