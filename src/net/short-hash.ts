import { createHash } from 'node:crypto';

/** A short stable hex digest (48 bits of SHA-256) for names that must fit kernel limits. */
export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
