import { createHash, timingSafeEqual } from 'node:crypto';
import type { Authenticator, AuthRequest, AuthResult } from './authenticator.ts';

/** A "god" token from config: only its sha256 is kept. */
export interface StaticToken {
  name: string;
  sha256: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Claims `Bearer <token>` when the token's hash is configured; cluster administrators. */
export class StaticTokenAuthenticator implements Authenticator {
  readonly name = 'static-token';
  private readonly tokens: { name: string; hash: Buffer }[];

  constructor(tokens: readonly StaticToken[]) {
    this.tokens = tokens.map((t) => ({ name: t.name, hash: Buffer.from(t.sha256, 'hex') }));
  }

  async authenticate(req: AuthRequest): Promise<AuthResult> {
    const m = /^Bearer\s+(\S{1,512})$/i.exec(req.authorization);
    if (!m) return { outcome: 'skip' };
    const hash = createHash('sha256').update(m[1]!, 'utf8').digest();
    // Compare against every token so the time taken does not say which one matched.
    let found: string | undefined;
    for (const t of this.tokens) if (t.hash.length === hash.length && timingSafeEqual(t.hash, hash)) found ??= t.name;
    if (!found) return { outcome: 'skip' };
    return { outcome: 'ok', identity: { name: found, authenticator: this.name, clusterAdmin: true } };
  }
}
