import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import { fingerprintOf } from './fingerprint.ts';
import { PinMismatchError } from './pinned-fetch.ts';

/** The WebSocket URL of a path on the server (`http:` → `ws:`, `https:` → `wss:`). */
export function webSocketUrl(server: string, path: string): string {
  const u = new URL(path, server.replace(/\/+$/, '') + '/');
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

/** Raised when the server answers the upgrade with an HTTP response; callers turn `status` and `body` into their own error. */
export class UpgradeRefusedError extends Error {
  constructor(
    readonly status: number,
    /** The response body parsed as JSON, or null when it is not JSON. */
    readonly body: unknown,
  ) {
    super(`WebSocket upgrade refused with HTTP status ${status}`);
    this.name = 'UpgradeRefusedError';
  }
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

/** The JSON of a refused upgrade's body; null when it is not JSON. */
function parsedBody(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return null;
  }
}

/**
 * Opens a WebSocket (the agent's tunnel, the CLI's console); with a pinned
 * fingerprint the TLS certificate is checked before the credential goes out
 * (a mismatch rejects with PinMismatchError). Resolves once open, paused
 * (call `resume()` after adding listeners); a refused upgrade rejects with
 * UpgradeRefusedError, a failed connection with the socket's error.
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
    ws.once('error', (e) => settle(() => reject(e)));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8').slice(0, 4096)));
      res.on('end', () => {
        ws.terminate();
        settle(() => reject(new UpgradeRefusedError(res.statusCode ?? 0, parsedBody(body))));
      });
    });
  });
}
