import { ApiError } from '../api/errors.ts';
import type { Authenticator, AuthRequest, Identity } from './authenticator.ts';

/**
 * Asks each authenticator in order; the first that claims the header decides.
 * The error never says which authenticator or why, so it cannot be used to
 * probe for users or tokens.
 */
export class AuthChain {
  constructor(private readonly authenticators: readonly Authenticator[]) {}

  async authenticate(req: AuthRequest): Promise<Identity> {
    if (req.authorization !== '') {
      for (const a of this.authenticators) {
        const r = await a.authenticate(req);
        if (r.outcome === 'ok') return r.identity;
        if (r.outcome === 'deny') break;
      }
    }
    throw new ApiError('unauthenticated', 'Authentication required: missing or invalid credentials', {
      headers: { 'www-authenticate': 'Bearer realm="crowdcloud", Basic realm="crowdcloud"' },
    });
  }
}
