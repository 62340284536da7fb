import { randomBytes } from 'node:crypto';

const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID: 48 bits of milliseconds then 80 random bits, Crockford base32; sorts by time. */
export function ulid(now: number = Date.now()): string {
  let out = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    out = alphabet[t % 32] + out;
    t = Math.floor(t / 32);
  }
  const rnd = randomBytes(16);
  for (let i = 0; i < 16; i++) out += alphabet[rnd[i]! & 31];
  return out;
}

/** An object id: `<prefix>_<ulid>`. */
export function objectId(prefix: string, now?: number): string {
  return `${prefix}_${ulid(now)}`;
}

/** A secret for humans to copy: `<prefix>_<43 chars of base64url>` (256 bits). */
export function secretToken(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}
