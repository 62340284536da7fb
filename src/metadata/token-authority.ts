import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../base/clock.ts';

/** IMDSv2 token lifetime bounds, in seconds (AWS: 1 s to 6 h). */
export const minTokenTtl = 1;
export const maxTokenTtl = 21600;

const ivLength = 12;
const tagLength = 16;
/** base64url of 12 + 8 + 16 bytes is 48 characters; anything longer is rejected before decoding. */
const maxTokenLength = 64;

/**
 * Reads `X-aws-ec2-metadata-token-ttl-seconds`: a plain decimal integer in
 * [1, 21600], or undefined when missing or invalid (the caller answers 400).
 */
export function parseTokenTtl(header: string | string[] | undefined): number | undefined {
  if (typeof header !== 'string' || !/^\d{1,5}$/.test(header)) return undefined;
  const ttl = Number(header);
  return ttl >= minTokenTtl && ttl <= maxTokenTtl ? ttl : undefined;
}

/**
 * Issues and checks IMDSv2 session tokens without storing them (after
 * Firecracker's MMDS): a token is the expiry time sealed with AES-256-GCM
 * under a per-process key, with the guest's instance id as additional data,
 * so it is valid only for the guest that asked for it and only until it
 * expires on the injected clock. A restart invalidates every token; clients
 * then get 401 and ask again.
 */
export class TokenAuthority {
  private readonly key: Buffer;
  private readonly clock: Clock;

  constructor(opts: { clock?: Clock; key?: Buffer } = {}) {
    this.clock = opts.clock ?? systemClock;
    this.key = opts.key ?? randomBytes(32);
    if (this.key.length !== 32) throw new Error('Cannot create a token authority: the key must be 32 bytes');
  }

  /** A token for `instanceId`, valid for `ttlSeconds` (already validated by parseTokenTtl). */
  issue(instanceId: string, ttlSeconds: number): string {
    const expiry = Buffer.alloc(8);
    expiry.writeBigUInt64LE(BigInt(this.clock.now() + ttlSeconds * 1000));
    const iv = randomBytes(ivLength);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: tagLength });
    cipher.setAAD(aad(instanceId));
    const sealed = Buffer.concat([cipher.update(expiry), cipher.final()]);
    return Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64url');
  }

  /** Whether `token` was issued to `instanceId` and has not expired. Never throws. */
  verify(token: string, instanceId: string): boolean {
    if (token.length === 0 || token.length > maxTokenLength || !/^[A-Za-z0-9_-]+$/.test(token)) return false;
    const raw = Buffer.from(token, 'base64url');
    if (raw.length !== ivLength + 8 + tagLength) return false;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, ivLength), { authTagLength: tagLength });
      decipher.setAAD(aad(instanceId));
      decipher.setAuthTag(raw.subarray(ivLength + 8));
      const expiry = Buffer.concat([decipher.update(raw.subarray(ivLength, ivLength + 8)), decipher.final()]);
      return Number(expiry.readBigUInt64LE()) > this.clock.now();
    } catch {
      return false;
    }
  }
}

function aad(instanceId: string): Buffer {
  return Buffer.from(`crowdcloud-imds:${instanceId}`, 'utf8');
}
