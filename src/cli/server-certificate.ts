import { connect } from 'node:tls';
import { isIP } from 'node:net';
import { fingerprintOf } from '../base/fingerprint.ts';

/** What a TLS server showed on first contact: its certificate's pin and whether the system CAs trust it. */
export interface ServerCertificate {
  fingerprint: string;
  trusted: boolean;
  /** Why it is not trusted, e.g. DEPTH_ZERO_SELF_SIGNED_CERT. */
  problem?: string;
}

/** Connects once to an https URL and reads the server's certificate, trusted or not. */
export function fetchServerCertificate(url: URL, timeoutMs = 10_000): Promise<ServerCertificate> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 443);
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, rejectUnauthorized: false, ...(isIP(host) ? {} : { servername: host }) });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)));
    socket.once('secureConnect', () => {
      const raw = socket.getPeerCertificate().raw;
      const result: ServerCertificate = { fingerprint: fingerprintOf(raw ?? new Uint8Array()), trusted: socket.authorized };
      if (!socket.authorized && socket.authorizationError) result.problem = String(socket.authorizationError);
      socket.end();
      resolve(result);
    });
    socket.once('error', (e) => reject(new Error(`Cannot read the certificate of "${url.host}": ${e.message}`, { cause: e })));
  });
}
