import { createHash, timingSafeEqual } from 'node:crypto';
import { parseNodeCredential } from '../api/enrolment.ts';
import type { Clock } from '../base/clock.ts';
import type { Authenticator, AuthRequest, AuthResult } from './authenticator.ts';

/** What the authenticator needs of a stored credential. */
export interface StoredNodeCredential {
  hash: string;
  subject: string;
  expiresAt: string;
  revoked?: boolean;
}

/** How long after its expiry a node credential can still renew itself, and nothing else (default: 7 days). */
export const renewalGraceMs = 7 * 24 * 3600 * 1000;

/**
 * Claims `Bearer crowdnode.…`: a host's own credential; the identity can act
 * only for that node. An expired one inside the renewal grace is accepted as
 * `renewalOnly`, so a host cut off longer than its credential's life gets
 * back without an operator (revocation still locks it out at once).
 */
export class NodeCredentialAuthenticator implements Authenticator {
  readonly name = 'node-credential';

  constructor(
    private readonly lookup: (id: string) => Promise<StoredNodeCredential | undefined>,
    private readonly clock: Clock,
    private readonly graceMs = renewalGraceMs,
  ) {}

  async authenticate(req: AuthRequest): Promise<AuthResult> {
    const m = /^Bearer\s+(crowdnode\.\S{1,200})$/.exec(req.authorization);
    if (!m) return { outcome: 'skip' };
    const parsed = parseNodeCredential(m[1]!);
    if (!parsed) return { outcome: 'deny', reason: 'malformed node credential' };
    const stored = await this.lookup(parsed.id);
    const given = createHash('sha256').update(parsed.secret).digest();
    const want = Buffer.from(stored?.hash ?? '0'.repeat(64), 'hex');
    const match = want.length === given.length && timingSafeEqual(want, given);
    const expiredFor = stored ? this.clock.now() - Date.parse(stored.expiresAt) : Infinity;
    if (!stored || !match || stored.revoked || expiredFor > this.graceMs) return { outcome: 'deny', reason: 'unknown, expired or revoked node credential' };
    return { outcome: 'ok', identity: { name: `node:${stored.subject}`, authenticator: this.name, node: stored.subject, ...(expiredFor >= 0 ? { renewalOnly: true } : {}) } };
  }
}
