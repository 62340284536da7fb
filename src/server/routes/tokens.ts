import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import type { Identity } from '../../auth/authenticator.ts';
import type { Authorizer } from '../../auth/authorizer.ts';
import { checkNarrower, mintingLimits, type ScopedTokenAuthenticator, type TokenClaims, type TokenRole } from '../../auth/scoped-token.ts';
import type { Clock } from '../../base/clock.ts';
import type { Credential, Store } from '../../store/store.ts';
import { withErrors } from './route-schemas.ts';
import '../request-context.ts';

const Role = Type.Union([Type.Literal('cluster-admin'), Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]);

export const TokenCreate = Type.Object(
  {
    project: Type.String({ minLength: 1, maxLength: 63, description: 'the project the token acts in, or "*" (cluster admins and "*" roles)' }),
    scopes: Type.Array(Type.String({ maxLength: 128 }), { minItems: 1, maxItems: 64, description: 'e.g. ["vm:read", "vm:write"]; "*" for all' }),
    ttl: Type.String({ pattern: '^[1-9][0-9]{0,6}[smhd]$', description: 'lifetime such as "30m", "1h", "7d"' }),
    role: Type.Optional(Role),
    cidr: Type.Optional(Type.String({ maxLength: 64, description: 'only usable from this source CIDR' })),
    description: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);
export type TokenCreate = Static<typeof TokenCreate>;

/** A token as listed: never its secret. */
export const TokenInfo = Type.Object({
  id: Type.String(),
  subject: Type.String(),
  project: Type.String(),
  role: Role,
  scopes: Type.Array(Type.String()),
  cidr: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
  expiresAt: Type.String(),
  createdAt: Type.String(),
  revoked: Type.Boolean(),
});
export type TokenInfo = Static<typeof TokenInfo>;

export const TokenCreated = Type.Intersect([TokenInfo, Type.Object({ token: Type.String({ description: 'the secret, shown only now' }) })]);
export const TokenList = Type.Object({ items: Type.Array(TokenInfo) });

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a ttl such as "1h". */
export function ttlMs(ttl: string): number {
  return Number(ttl.slice(0, -1)) * units[ttl.slice(-1)]!;
}

function info(c: Credential): TokenInfo {
  const d = c.data as { project: string; role: TokenRole; scopes: string[]; cidr?: string; description?: string };
  return {
    id: c.id,
    subject: c.subject,
    project: d.project,
    role: d.role,
    scopes: d.scopes,
    ...(d.cidr !== undefined ? { cidr: d.cidr } : {}),
    ...(d.description !== undefined ? { description: d.description } : {}),
    expiresAt: c.expiresAt,
    createdAt: c.createdAt,
    revoked: c.revoked === true,
  };
}

function refuse(message: string, details: { path: string; message: string }[]): never {
  throw new ApiError('forbidden', `Cannot create token: ${message}`, { details });
}

export interface TokenRoutesOptions {
  store: Store;
  authorizer: Authorizer;
  clock: Clock;
  /** Absent when the server's config has no scoped-token authenticator: minting is refused. */
  scoped?: ScopedTokenAuthenticator;
}

/** May this identity see or revoke a token: its own, any as cluster admin, or its project's as that project's admin. */
function manages(opts: TokenRoutesOptions, identity: Identity, c: Credential): boolean {
  if (identity.clusterAdmin || c.subject === identity.name) return true;
  const project = (c.data as { project?: string }).project;
  if (project === undefined || project === '*') return false;
  try {
    opts.authorizer.authorize(identity, { verb: 'write', resource: 'token', project });
    return true;
  } catch {
    return false;
  }
}

/**
 * `POST /v1/tokens` mints a scoped token no broader than the caller's own
 * credential (scopes, project, role, expiry, CIDR); `GET` lists the tokens
 * the caller manages, without secrets; `DELETE /v1/tokens/{id}` revokes one.
 * Only the token's sha256 is stored (a `token` credential).
 */
export function tokenRoutes(opts: TokenRoutesOptions): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const tags = ['token'];
    const callerClaims = (request: FastifyRequest): TokenClaims | undefined =>
      request.identity?.authenticator === 'scoped-token' ? opts.scoped?.verify(String(request.headers.authorization ?? '')) : undefined;

    app.post<{ Body: TokenCreate }>(
      '/v1/tokens',
      { config: { kind: 'token' }, schema: { tags, summary: 'Mint a scoped token narrower than the caller’s credential', body: TokenCreate, response: withErrors({ 201: TokenCreated }) } },
      async (request, reply) => {
        const identity = request.identity!;
        const body = request.body;
        if (!opts.scoped) throw new ApiError('unavailable', 'Cannot create token: the server has no scoped-token authenticator configured');
        if (identity.node) refuse('host credentials cannot mint tokens', [{ path: 'authorization', message: 'a host credential' }]);
        opts.authorizer.authorize(identity, { verb: 'write', resource: 'token', ...(body.project !== '*' ? { project: body.project } : {}) });
        const limits = mintingLimits(identity, body.project, callerClaims(request));
        if (!limits) refuse(`no role in project "${body.project}"`, [{ path: '/project', message: 'no role there' }]);
        // A cluster admin minting for one project hands on that project's strongest role.
        const role = body.role ?? (limits.role === 'cluster-admin' && body.project !== '*' ? 'admin' : limits.role);
        const exp = opts.clock.now() + ttlMs(body.ttl);
        const child = { sub: identity.name, project: body.project, role, scopes: body.scopes, exp, ...(body.cidr !== undefined ? { cidr: body.cidr } : {}) };
        const wider = checkNarrower(limits, child);
        if (wider.length > 0) refuse(`it would be broader than the caller’s credential: ${wider[0]!.path}: ${wider[0]!.message}`, wider);
        const { ttl, description, ...rest } = body;
        const { token, claims } = opts.scoped.issue({ ...rest, sub: identity.name, role, ttlMs: ttlMs(ttl) });
        const now = new Date(opts.clock.now()).toISOString();
        const credential: Credential = {
          id: claims.id,
          type: 'token',
          hash: createHash('sha256').update(token).digest('hex'),
          subject: identity.name,
          expiresAt: new Date(claims.exp).toISOString(),
          createdAt: now,
          createdBy: identity.name,
          data: { project: claims.project, role: claims.role, scopes: claims.scopes, ...(claims.cidr ? { cidr: claims.cidr } : {}), ...(description ? { description } : {}) },
        };
        await opts.store.putCredential(credential);
        return reply.code(201).send({ ...info(credential), token });
      },
    );

    app.get(
      '/v1/tokens',
      { schema: { tags, summary: 'List the tokens the caller may manage (no secrets)', response: withErrors({ 200: TokenList }) } },
      async (request) => {
        const identity = request.identity!;
        if (identity.node) throw new ApiError('forbidden', 'Cannot list tokens: permission denied');
        const all = await opts.store.listCredentials({ type: 'token' });
        return { items: all.filter((c) => manages(opts, identity, c)).map(info) };
      },
    );

    app.delete<{ Params: { id: string } }>(
      '/v1/tokens/:id',
      {
        config: { kind: 'token' },
        schema: {
          tags,
          summary: 'Revoke a token',
          params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
          response: withErrors({ 200: TokenInfo }),
        },
      },
      async (request) => {
        const identity = request.identity!;
        const c = await opts.store.getCredential(request.params.id);
        // Someone else's token is "not found", so ids cannot be probed.
        if (!c || c.type !== 'token' || identity.node || !manages(opts, identity, c)) {
          throw new ApiError('not_found', `Cannot find token "${request.params.id}"`);
        }
        await opts.store.revokeCredentials({ id: c.id, type: 'token' });
        return info({ ...c, revoked: true });
      },
    );
  };
}
