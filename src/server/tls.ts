import { X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseIp } from '../api/ip.ts';
import { fingerprintOf } from '../base/fingerprint.ts';
import type { Runner } from '../base/runner.ts';

/** PEM certificate and key the server presents. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** The pin of a PEM certificate, in the form the CLI and agents store (src/base/fingerprint.ts). */
export function certFingerprint(pem: string): string {
  return fingerprintOf(new X509Certificate(pem).raw);
}

/** The openssl command that makes a self-signed EC certificate valid for `hosts` (names and addresses) for ten years. */
export function selfSignedCommand(opts: { certPath: string; keyPath: string; hosts: string[] }): string[] {
  const san = [...new Set(['localhost', '127.0.0.1', '::1', ...opts.hosts])]
    .map((h) => (parseIp(h) ? `IP:${h}` : `DNS:${h}`))
    .join(',');
  return [
    'openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '3650', '-subj', '/CN=crowdcloud', '-addext', `subjectAltName=${san}`,
    '-keyout', opts.keyPath, '-out', opts.certPath,
  ];
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The server's own certificate in `<dataDir>/tls/`, made with openssl on first
 * start (key mode 0600 in a 0700 directory) and reused afterwards.
 */
export async function ensureSelfSignedCert(runner: Runner, dataDir: string, hosts: string[]): Promise<TlsFiles & { created: boolean }> {
  const dir = join(dataDir, 'tls');
  const certPath = join(dir, 'server.crt');
  const keyPath = join(dir, 'server.key');
  let created = false;
  if (!(await exists(certPath)) || !(await exists(keyPath))) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    await runner.run({ argv: selfSignedCommand({ certPath, keyPath, hosts }) });
    created = true;
  }
  await chmod(keyPath, 0o600);
  return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8'), created };
}

/** Reads operator-given certificate and key files, checking the certificate parses. */
export async function readTlsFiles(certPath: string, keyPath: string): Promise<TlsFiles> {
  const [cert, key] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  try {
    new X509Certificate(cert);
  } catch (e) {
    throw new Error(`Cannot use TLS certificate "${certPath}": not a PEM certificate`, { cause: e });
  }
  return { cert, key };
}
