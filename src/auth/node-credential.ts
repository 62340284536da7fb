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

/** Claims `Bearer crowdnode.…`: a host's own credential; the identity can act only for that node. */
export class NodeCredentialAuthenticator implements Authenticator {
  readonly name = 'node-credential';

  constructor(
    private readonly lookup: (id: string) => Promise<StoredNodeCredential | undefined>,
    private readonly clock: Clock,
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
    if (!stored || !match || stored.revoked || Date.parse(stored.expiresAt) <= this.clock.now())
      return { outcome: 'deny', reason: 'unknown, expired or revoked node credential' };
    return { outcome: 'ok', identity: { name: `node:${stored.subject}`, authenticator: this.name, node: stored.subject } };
  }
}
