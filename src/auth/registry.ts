import { readFileSync } from 'node:fs';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ApiError, type ErrorDetail } from '../api/errors.ts';
import type { Clock } from '../base/clock.ts';
import type { Logger } from '../base/logger.ts';
import type { Authenticator } from './authenticator.ts';
import { GrantMap } from './grants.ts';
import { HtpasswdAuthenticator } from './htpasswd.ts';
import { LdapAuthenticator } from './ldap.ts';
import { ScopedTokenAuthenticator } from './scoped-token.ts';
import { StaticTokenAuthenticator } from './static-token.ts';
import { TotpAuthenticator, type TotpState } from './totp.ts';
import { WebhookAuthenticator } from './webhook.ts';

const strict = { additionalProperties: false } as const;
const ms = (description: string) => Type.Optional(Type.Integer({ minimum: 1, maximum: 3_600_000, description }));
/** `optional`: enrolled users need a code; `required`: every user does. */
const Totp = Type.Optional(Type.Union([Type.Literal('off'), Type.Literal('optional'), Type.Literal('required')]));

export const HtpasswdConfig = Type.Object({ type: Type.Literal('htpasswd'), file: Type.String({ minLength: 1 }), users: Type.Optional(GrantMap), totp: Totp }, strict);

export const LdapConfig = Type.Object(
  {
    type: Type.Literal('ldap'),
    url: Type.String({ pattern: '^ldaps?://[^/]+/?$' }),
    startTls: Type.Optional(Type.Boolean()),
    caFile: Type.Optional(Type.String({ minLength: 1 })),
    bindDn: Type.String({ minLength: 1 }),
    bindPassword: Type.Optional(Type.String({ minLength: 1 })),
    bindPasswordFile: Type.Optional(Type.String({ minLength: 1 })),
    userBase: Type.String({ minLength: 1 }),
    userFilter: Type.Optional(Type.String({ minLength: 3 })),
    nameAttribute: Type.Optional(Type.String({ minLength: 1 })),
    groups: Type.Optional(GrantMap),
    groupSearch: Type.Optional(Type.Object({ base: Type.String({ minLength: 1 }), filter: Type.Optional(Type.String({ minLength: 3 })) }, strict)),
    timeoutMs: ms('per operation'),
    totp: Totp,
  },
  strict,
);

export const StaticTokenConfig = Type.Object(
  {
    type: Type.Literal('static-token'),
    tokens: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }), sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }) }, strict), { minItems: 1 }),
  },
  strict,
);

/** Each key file's bytes are one HMAC key (at least 32): the first signs, all verify. */
export const ScopedTokenConfig = Type.Object(
  { type: Type.Literal('scoped-token'), keyFiles: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }), maxTtlHours: Type.Optional(Type.Number({ exclusiveMinimum: 0 })) },
  strict,
);

export const WebhookConfig = Type.Object(
  { type: Type.Literal('webhook'), url: Type.String({ pattern: '^https?://' }), timeoutMs: ms('before denying'), cacheTtlMs: ms('answer reuse'), cacheSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })) },
  strict,
);

/** The ordered chain in the server config; the first authenticator that claims a header decides. */
export const AuthConfig = Type.Array(Type.Union([HtpasswdConfig, LdapConfig, StaticTokenConfig, ScopedTokenConfig, WebhookConfig]), { minItems: 1 });
export type AuthConfig = Static<typeof AuthConfig>;

/** What factories may need from the server's wiring. */
export interface AuthDeps {
  logger: Logger;
  clock: Clock;
  /** Needed when an entry turns TOTP on. */
  totpState?: TotpState;
  /** Needed by `scoped-token`. */
  isRevoked?: (id: string) => boolean | Promise<boolean>;
}

interface Factory<S extends TSchema> {
  schema: S;
  create(entry: Static<S>, deps: AuthDeps): Authenticator | Promise<Authenticator>;
}

function factory<S extends TSchema>(schema: S, create: Factory<S>['create']): Factory<TSchema> {
  return { schema, create } as Factory<TSchema>;
}

function readSecret(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new Error(`Cannot read ${what} "${file}": ${(e as Error).message}`, { cause: e });
  }
}

function withTotp(inner: Authenticator, mode: 'off' | 'optional' | 'required' | undefined, deps: AuthDeps): Authenticator {
  if (!mode || mode === 'off') return inner;
  if (!deps.totpState) throw new Error('Cannot turn TOTP on: the server gave no TOTP state');
  return new TotpAuthenticator({ inner, state: deps.totpState, clock: deps.clock, required: mode === 'required' });
}

/** Authenticator type name → config schema and factory. */
export const authenticatorFactories: Record<string, Factory<TSchema>> = {
  htpasswd: factory(HtpasswdConfig, async (e, deps) =>
    withTotp(await new HtpasswdAuthenticator({ file: e.file, users: e.users, logger: deps.logger }).ready(), e.totp, deps),
  ),
  ldap: factory(LdapConfig, (e, deps) => {
    if ((e.bindPassword === undefined) === (e.bindPasswordFile === undefined)) throw new Error('bindPassword: give exactly one of bindPassword and bindPasswordFile');
    const bindPassword = e.bindPassword ?? readSecret(e.bindPasswordFile!, 'LDAP bind password file').toString('utf8').trim();
    const caPem = e.caFile ? readSecret(e.caFile, 'LDAP CA file').toString('utf8') : undefined;
    const { type: _t, caFile: _c, bindPasswordFile: _b, totp, ...rest } = e;
    return withTotp(new LdapAuthenticator({ ...rest, bindPassword, caPem, logger: deps.logger }), totp, deps);
  }),
  'static-token': factory(StaticTokenConfig, (e) => new StaticTokenAuthenticator(e.tokens)),
  'scoped-token': factory(ScopedTokenConfig, (e, deps) => {
    if (!deps.isRevoked) throw new Error('Cannot use scoped tokens: the server gave no revocation lookup');
    const keys = e.keyFiles.map((f) => readSecret(f, 'scoped-token key file'));
    const maxTtlMs = e.maxTtlHours !== undefined ? e.maxTtlHours * 3_600_000 : undefined;
    return new ScopedTokenAuthenticator({ keys, clock: deps.clock, isRevoked: deps.isRevoked, logger: deps.logger, maxTtlMs });
  }),
  webhook: factory(WebhookConfig, (e, deps) => new WebhookAuthenticator({ ...e, clock: deps.clock, logger: deps.logger })),
};

function configError(details: ErrorDetail[]): ApiError {
  const d = details[0]!;
  return new ApiError('invalid', `Invalid auth config: ${d.path}: ${d.message}`, { details });
}

/** A JSON pointer such as `/groupSearch/base` as `.groupSearch.base`. */
function dotted(pointer: string): string {
  return pointer.split('/').slice(1).map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
}

/** Checks the config against each entry's own schema; errors name the entry (`authenticators[i]`) and the field. */
export function checkAuthConfig(config: unknown): AuthConfig {
  if (!Array.isArray(config) || config.length === 0) throw configError([{ path: 'authenticators', message: 'expected a non-empty list' }]);
  const details: ErrorDetail[] = [];
  config.forEach((entry: unknown, i) => {
    const at = `authenticators[${i}]`;
    const type = (entry as { type?: unknown } | null)?.type;
    const f = typeof type === 'string' ? authenticatorFactories[type] : undefined;
    if (!f) {
      details.push({ path: `${at}.type`, message: `expected one of ${Object.keys(authenticatorFactories).join(', ')}` });
      return;
    }
    // TypeBox may report one field twice (missing, then wrong type): keep the first.
    const seen = new Set<string>();
    for (const err of Value.Errors(f.schema, entry)) {
      const path = `${at}${dotted(err.path)}`;
      if (!seen.has(path)) details.push({ path, message: err.message.toLowerCase() });
      seen.add(path);
    }
  });
  if (details.length > 0) throw configError(details);
  return config as AuthConfig;
}

/** Builds the ordered chain from config; a factory's failure names its entry. */
export async function buildAuthenticators(config: unknown, deps: AuthDeps): Promise<Authenticator[]> {
  const entries = checkAuthConfig(config);
  const out: Authenticator[] = [];
  for (const [i, entry] of entries.entries()) {
    try {
      out.push(await authenticatorFactories[entry.type]!.create(entry, deps));
    } catch (e) {
      const message = e instanceof ApiError ? e.message : (e as Error).message;
      throw configError([{ path: `authenticators[${i}] (${entry.type})`, message }]);
    }
  }
  return out;
}
