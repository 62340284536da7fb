/** Who made a request, as established by the authenticator that claimed it. */
export interface Identity {
  /** A stable name: "admin", "alice", "node:host-1", "token:tok_01J…". */
  name: string;
  /** The authenticator that accepted the credential. */
  authenticator: string;
  /** Cluster-wide administrator: every project, every kind. */
  clusterAdmin?: boolean;
  /** Roles per project (`admin`, `operator`, `viewer`). */
  roles?: Record<string, 'admin' | 'operator' | 'viewer'>;
  /** Scopes that narrow the roles (`vm:read`, `vm:write`…); all when absent. */
  scopes?: string[];
  /** Groups the user belongs to (LDAP: each group's DN and its first RDN value), for project `members` bindings. */
  groups?: string[];
  /** Set for a host's agent: the node this credential belongs to. */
  node?: string;
  /** A node credential past its expiry but inside the renewal grace: it may only renew itself (a host back from a long partition). */
  renewalOnly?: boolean;
}

/** What an authenticator sees: the opaque header and a summary of the request. */
export interface AuthRequest {
  /** The raw `Authorization` header; opaque until an authenticator claims it. */
  authorization: string;
  method: string;
  path: string;
  project?: string;
  /** The client's address. */
  source: string;
}

export type AuthResult =
  | { outcome: 'ok'; identity: Identity }
  /** The credential is this authenticator's and it is wrong: stop the chain. */
  | { outcome: 'deny'; reason: string }
  /** Not this authenticator's credential: ask the next one. */
  | { outcome: 'skip' };

export interface Authenticator {
  readonly name: string;
  authenticate(req: AuthRequest): Promise<AuthResult>;
}
