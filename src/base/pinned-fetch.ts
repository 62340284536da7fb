import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import { fingerprintOf } from './fingerprint.ts';

/** Raised when a server presents a certificate other than the pinned one. */
export class PinMismatchError extends Error {
  constructor(host: string, got: string, pinned: string) {
    super(
      `Refusing server "${host}": its certificate fingerprint ${got} does not match the pinned ${pinned}; ` +
        'if the certificate changed on purpose, run "crowd login" again',
    );
    this.name = 'PinMismatchError';
  }
}

/** A fetch bound to its own connection pool; `close` ends the pool's idle connections so the process can exit. */
export interface ClosableFetch {
  fetch: typeof fetch;
  close(): Promise<void>;
}

/**
 * A fetch that trusts exactly one certificate, whoever signed it: the one
 * `crowd login` pinned. Chain and host name checks are replaced by the pin;
 * TLS sessions are not resumed so every connection shows its certificate.
 */
export function pinnedFetch(fingerprint: string): ClosableFetch {
  const connect = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 });
  const agent = new Agent({
    connect: (opts, callback) =>
      connect(opts, (err, socket) => {
        if (err || !socket) return callback(err ?? new Error('Cannot connect'), null);
        const tls = socket as TLSSocket;
        if (typeof tls.getPeerCertificate !== 'function') return callback(null, socket);
        const got = fingerprintOf(tls.getPeerCertificate().raw ?? new Uint8Array());
        if (got !== fingerprint) {
          socket.destroy();
          return callback(new PinMismatchError(`${opts.hostname}:${opts.port}`, got, fingerprint), null);
        }
        callback(null, socket);
      }),
  });
  const fetchPinned = (input: string | URL, init?: RequestInit) =>
    undiciFetch(input, { ...(init as object), dispatcher: agent } as Parameters<typeof undiciFetch>[1]);
  return { fetch: fetchPinned as unknown as typeof fetch, close: () => agent.destroy() };
}
