import { ApiError } from '../api/errors.ts';
import type { Identity } from './authenticator.ts';

export type Verb = 'read' | 'write';

/** One thing a request wants to do. */
export interface Action {
  verb: Verb;
  /** An object kind, or a system resource such as "audit". */
  resource: string;
  /** Absent for cluster-scoped resources and for lists across projects. */
  project?: string;
}

/** Decides every route; throws `forbidden`. */
export interface Authorizer {
  authorize(identity: Identity, action: Action): void;
}

/**
 * Cluster administrators may do everything; everyone else nothing (roles come
 * with the authorization issue). A node's credential passes here: what a node
 * may touch depends on the object, so the server's node authorizer decides.
 */
export class AdminOnlyAuthorizer implements Authorizer {
  authorize(identity: Identity, action: Action): void {
    if (identity.clusterAdmin || identity.node) return;
    throw new ApiError('forbidden', `Cannot ${action.verb} ${action.resource}: permission denied`);
  }
}
