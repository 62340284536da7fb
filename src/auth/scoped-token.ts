import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ApiError, type ErrorDetail } from '../api/errors.ts';
import type { Clock } from '../base/clock.ts';
import { objectId } from '../base/ids.ts';
import type { Logger } from '../base/logger.ts';
import type { Authenticator, AuthRequest, AuthResult, Identity } from './authenticator.ts';
import { roleRank } from './grants.ts';
import { roleIn } from './role-authorizer.ts';
import { isScope, scopesBeyond } from './scopes.ts';
import { cidrWithin, parseCidr, sourceInCidr } from './source-cidr.ts';

const prefix = 'cst_';

/** What a scoped token carries; `project: "*"` means every project, required for `cluster-admin`. */
export const TokenClaims = Type.Object(
  {
    id: Type.String({ maxLength: 64 }),
    sub: Type.String({ minLength: 1, maxLength: 256 }),
    project: Type.String({ minLength: 1, maxLength: 63 }),
    role: Type.Union([Type.Literal('cluster-admin'), Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]),
    scopes: Type.Array(Type.String(), { minItems: 1, maxItems: 64 }),
    /** Expiry, milliseconds since the epoch. */
    exp: Type.Number(),
    cidr: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type TokenClaims = Static<typeof TokenClaims>;
export type TokenRole = TokenClaims['role'];

/** What a caller asks for when minting; the server fills `sub` and `role` from the minter. */
export type TokenRequest = Omit<TokenClaims, 'id' | 'exp'> & { ttlMs: number };

const rank: Record<TokenRole, number> = { ...roleRank, 'cluster-admin': 4 };

export interface ScopedTokenOptions {
  /** HMAC-SHA256 keys of at least 32 bytes: the first signs, every one verifies (rotation). */
  keys: readonly Buffer[];
  clock: Clock;
  /** Whether the token with this id was revoked; a failing lookup denies. */
  isRevoked(id: string): boolean | Promise<boolean>;
  logger: Logger;
  /** The longest lifetime a token may be given (default 90 days). */
  maxTtlMs?: number;
}

/** Problems with a token request that need no parent: scopes, project, CIDR, lifetime. */
export function checkTokenRequest(r: TokenRequest, maxTtlMs: number): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  r.scopes.forEach((s, i) => isScope(s) || out.push({ path: `/scopes/${i}`, message: `"${s}" is not a scope (e.g. "vm:read", "vm:write", "*")` }));
  if (r.scopes.length === 0) out.push({ path: '/scopes', message: 'at least one scope is needed' });
  if (r.project !== '*' && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(r.project)) out.push({ path: '/project', message: `"${r.project}" is not a project name` });
  if (r.role === 'cluster-admin' && r.project !== '*') out.push({ path: '/project', message: 'a cluster-admin token covers every project: use "*"' });
  if (r.cidr !== undefined && !parseCidr(r.cidr)) out.push({ path: '/cidr', message: `"${r.cidr}" is not a CIDR such as "192.0.2.0/24"` });
  if (!Number.isFinite(r.ttlMs) || r.ttlMs <= 0 || r.ttlMs > maxTtlMs) out.push({ path: '/ttl', message: `must be more than 0 and at most ${maxTtlMs / 3_600_000} h` });
  return out;
}

/**
 * Why `child` is not narrower than or equal to `parent` (empty when it is):
 * scopes covered, same project (or parent "*"), role not stronger, expiry not
 * later, CIDR inside the parent's. A token can only mint tokens like this.
 */
export function checkNarrower(parent: Omit<TokenClaims, 'id'>, child: Omit<TokenClaims, 'id'>): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  const beyond = scopesBeyond(parent.scopes, child.scopes);
  if (beyond.length > 0) out.push({ path: '/scopes', message: `beyond the parent's scopes: ${beyond.join(', ')}` });
  if (parent.project !== '*' && child.project !== parent.project) out.push({ path: '/project', message: `must be "${parent.project}"` });
  if (rank[child.role] > rank[parent.role]) out.push({ path: '/role', message: `must not be stronger than "${parent.role}"` });
  if (child.exp > parent.exp) out.push({ path: '/ttl', message: `must not outlive the parent (expires ${new Date(parent.exp).toISOString()})` });
  if (parent.cidr !== undefined && (child.cidr === undefined || !cidrWithin(child.cidr, parent.cidr))) out.push({ path: '/cidr', message: `must lie inside "${parent.cidr}"` });
  return out;
}

/**
 * The limits a minter passes on: a token's own claims, or for anyone else
 * their role in `project` (every project for cluster admins), their scopes,
 * no expiry and no CIDR. Undefined when they have no role there.
 */
export function mintingLimits(identity: Identity, project: string, token?: TokenClaims): Omit<TokenClaims, 'id'> | undefined {
  if (token) return token;
  const scopes = identity.scopes ?? ['*'];
  if (identity.clusterAdmin) return { sub: identity.name, project: '*', role: 'cluster-admin', scopes, exp: Infinity };
  const role = roleIn(identity, project);
  if (!role) return undefined;
  return { sub: identity.name, project: identity.roles?.[project] ? project : '*', role, scopes, exp: Infinity };
}

function kid(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/**
 * Signed tokens the server issues: `Bearer cst_<payload>.<signature>`, the
 * payload base64url JSON of the claims plus the key id, the signature
 * HMAC-SHA256 over `cst_<payload>`. Claims `cst_` tokens only; every check
 * (signature, expiry, revocation, source CIDR) must pass.
 */
export class ScopedTokenAuthenticator implements Authenticator {
  readonly name = 'scoped-token';
  private readonly keys: Map<string, Buffer>;
  readonly maxTtlMs: number;

  constructor(private readonly opts: ScopedTokenOptions) {
    if (opts.keys.length === 0 || opts.keys.some((k) => k.length < 32)) throw new Error('Cannot use scoped-token keys: each needs at least 32 bytes');
    this.keys = new Map(opts.keys.map((k) => [kid(k), k]));
    this.maxTtlMs = opts.maxTtlMs ?? 90 * 24 * 3_600_000;
  }

  /** Signs a new token; the caller has checked the minter's limits with `checkNarrower`. */
  issue(r: TokenRequest): { token: string; claims: TokenClaims } {
    const problems = checkTokenRequest(r, this.maxTtlMs);
    if (problems.length > 0) throw new ApiError('invalid', `Cannot create token: ${problems[0]!.path}: ${problems[0]!.message}`, { details: problems });
    const now = this.opts.clock.now();
    const { ttlMs, ...rest } = r;
    const claims: TokenClaims = { id: objectId('tok', now), ...rest, exp: now + ttlMs };
    const key = this.opts.keys[0]!;
    const payload = Buffer.from(JSON.stringify({ kid: kid(key), ...claims })).toString('base64url');
    return { token: `${prefix}${payload}.${this.sign(key, payload)}`, claims };
  }

  /** The claims of a well-signed token in a header, or undefined (expiry and revocation not checked). */
  verify(authorization: string): TokenClaims | undefined {
    const m = /^Bearer\s+cst_([A-Za-z0-9_-]{1,4096})\.([A-Za-z0-9_-]{43})$/i.exec(authorization);
    if (!m) return undefined;
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(m[1]!, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    const key = this.keys.get(String((body as { kid?: unknown })?.kid));
    if (!key) return undefined;
    const want = Buffer.from(this.sign(key, m[1]!));
    if (!timingSafeEqual(want, Buffer.from(m[2]!))) return undefined;
    const { kid: _kid, ...claims } = body as Record<string, unknown>;
    return Value.Check(TokenClaims, claims) ? claims : undefined;
  }

  async authenticate(req: AuthRequest): Promise<AuthResult> {
    if (!/^Bearer\s+cst_/i.test(req.authorization)) return { outcome: 'skip' };
    const c = this.verify(req.authorization);
    if (!c) return { outcome: 'deny', reason: 'malformed or badly signed token' };
    if (this.opts.clock.now() >= c.exp) return { outcome: 'deny', reason: 'token expired' };
    if (c.cidr !== undefined && !sourceInCidr(req.source, c.cidr)) return { outcome: 'deny', reason: `source outside the token's CIDR` };
    try {
      if (await this.opts.isRevoked(c.id)) return { outcome: 'deny', reason: 'token revoked' };
    } catch (e) {
      this.opts.logger.warn({ tokenId: c.id, err: (e as Error).message }, 'Cannot check whether a token is revoked: denying it');
      return { outcome: 'deny', reason: 'revocation check failed' };
    }
    const identity: Identity = { name: `token:${c.id}`, authenticator: this.name, scopes: c.scopes };
    if (c.role === 'cluster-admin') identity.clusterAdmin = true;
    else identity.roles = { [c.project]: c.role };
    return { outcome: 'ok', identity };
  }

  private sign(key: Buffer, payload: string): string {
    return createHmac('sha256', key).update(prefix + payload).digest('base64url');
  }
}
