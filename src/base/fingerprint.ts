import { createHash } from 'node:crypto';

/** The pin of a certificate as the CLI shows and stores it: `sha256:` and the lower-case hex SHA-256 of its DER bytes. */
export function fingerprintOf(der: Uint8Array): string {
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/**
 * Reads a fingerprint in any common spelling (`sha256:ab12…`, `SHA256:AB:12:…`,
 * bare hex with or without colons) as `sha256:<hex>`; undefined if it is not one.
 */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/^sha-?256[:=]/i, '').replace(/:/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? `sha256:${hex}` : undefined;
}
