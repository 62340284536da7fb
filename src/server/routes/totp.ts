import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import { confirmTotp, enrolTotp, type TotpRecord, type TotpState } from '../../auth/totp.ts';
import type { Clock } from '../../base/clock.ts';
import { withErrors } from './route-schemas.ts';
import '../request-context.ts';

/** The authenticators whose identities are people who typed a password (with or without a second factor). */
const passwordAuthenticator = /^(htpasswd|ldap)(\+totp)?$/;

/** How long a started enrolment waits for its first code. */
export const pendingTtlMs = 10 * 60_000;
const maxPending = 1000;
/** Wrong first codes after which a pending enrolment is dropped (6 digits, 3 steps: no guessing within the ttl). */
const maxConfirmFailures = 5;

/** TOTP state the enrolment routes can write: confirmed records in, lost devices out. */
export interface TotpEnrolmentState extends TotpState {
  put(user: string, record: TotpRecord, by: string): Promise<void>;
  /** Forgets a user's second factor; false when the user had none. */
  reset(user: string): Promise<boolean>;
}

/**
 * Enrolments waiting for their first code, in memory: a restart or 10 minutes
 * forgets them (the user simply enrols again), and at most 1,000 wait at once
 * (the oldest goes first). One per user; a new one replaces the old.
 */
export class PendingEnrolments {
  private readonly byUser = new Map<string, { record: TotpRecord; expiresAt: number; failures: number }>();

  constructor(private readonly clock: Clock) {}

  add(user: string, record: TotpRecord): void {
    this.sweep();
    this.byUser.delete(user);
    if (this.byUser.size >= maxPending) this.byUser.delete(this.byUser.keys().next().value!);
    this.byUser.set(user, { record, expiresAt: this.clock.now() + pendingTtlMs, failures: 0 });
  }

  get(user: string): TotpRecord | undefined {
    this.sweep();
    return this.byUser.get(user)?.record;
  }

  /** Counts a wrong first code; the enrolment is dropped after too many. */
  fail(user: string): void {
    const p = this.byUser.get(user);
    if (p && ++p.failures >= maxConfirmFailures) this.byUser.delete(user);
  }

  delete(user: string): void {
    this.byUser.delete(user);
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [user, p] of this.byUser) if (p.expiresAt <= now) this.byUser.delete(user);
  }
}

export const TotpEnrolled = Type.Object({
  uri: Type.String({ description: 'otpauth:// URI for an authenticator app (holds the secret)' }),
  secret: Type.String({ description: 'the base32 secret, for apps that cannot read the URI' }),
  recoveryCodes: Type.Array(Type.String(), { description: 'one-time codes for a lost device, shown only now' }),
  expiresAt: Type.String({ description: 'confirm before this time' }),
});

export const TotpConfirm = Type.Object({ code: Type.String({ pattern: '^[0-9]{6}$', description: 'the current 6-digit code of the new secret' }) }, { additionalProperties: false });
export type TotpConfirm = Static<typeof TotpConfirm>;

export const TotpStatus = Type.Object({ user: Type.String(), enrolled: Type.Boolean() });

export interface TotpRoutesOptions {
  state: TotpEnrolmentState;
  clock: Clock;
  /** The issuer shown in authenticator apps (default "crowdcloud"). */
  issuer?: string;
}

/** The user behind a password login, or `forbidden`: tokens, hosts and other authenticators cannot enrol. */
function passwordUser(request: FastifyRequest, action: string): string {
  const identity = request.identity!;
  if (identity.node !== undefined || !passwordAuthenticator.test(identity.authenticator)) {
    throw new ApiError('forbidden', `Cannot ${action}: only a user who logged in with a password can`, {
      details: [{ path: 'authorization', message: `a credential of authenticator "${identity.authenticator}"` }],
    });
  }
  return identity.name;
}

/**
 * `POST /v1/totp/enrol` starts enrolment for the password user calling it
 * (secret and recovery codes shown once, kept pending, any confirmed record
 * untouched); `POST /v1/totp/confirm` keeps it once a first code matches;
 * `DELETE /v1/totp/{user}` lets a cluster admin reset a lost device.
 */
export function totpRoutes(opts: TotpRoutesOptions): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const tags = ['totp'];
    const pending = new PendingEnrolments(opts.clock);

    app.post(
      '/v1/totp/enrol',
      { config: { kind: 'totp' }, schema: { tags, summary: 'Start TOTP enrolment for the calling password user', response: withErrors({ 201: TotpEnrolled }) } },
      async (request, reply) => {
        const user = passwordUser(request, 'enrol in TOTP');
        const { uri, secret, recoveryCodes, record } = enrolTotp(user, opts.issuer ? { issuer: opts.issuer } : {});
        pending.add(user, record);
        return reply.code(201).send({ uri, secret, recoveryCodes, expiresAt: new Date(opts.clock.now() + pendingTtlMs).toISOString() });
      },
    );

    app.post<{ Body: TotpConfirm }>(
      '/v1/totp/confirm',
      { config: { kind: 'totp' }, schema: { tags, summary: 'Confirm the pending TOTP enrolment with a first code', body: TotpConfirm, response: withErrors({ 200: TotpStatus }) } },
      async (request) => {
        const user = passwordUser(request, 'confirm TOTP enrolment');
        const record = pending.get(user);
        if (!record) throw new ApiError('not_found', `Cannot confirm TOTP enrolment of user "${user}": nothing pending (start with POST /v1/totp/enrol; it waits 10 minutes)`);
        const confirmed = confirmTotp(record, request.body.code, opts.clock.now());
        if (!confirmed) {
          pending.fail(user);
          throw new ApiError('invalid', `Cannot confirm TOTP enrolment of user "${user}": wrong code`, { details: [{ path: '/code', message: 'not a current code of the new secret' }] });
        }
        pending.delete(user);
        await opts.state.put(user, confirmed, user);
        return { user, enrolled: true };
      },
    );

    app.delete<{ Params: { user: string } }>(
      '/v1/totp/:user',
      {
        config: { kind: 'totp' },
        schema: {
          tags,
          summary: 'Reset a user’s second factor (cluster admins; for a lost device)',
          params: Type.Object({ user: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false }),
          response: withErrors({ 200: TotpStatus }),
        },
      },
      async (request) => {
        const { user } = request.params;
        if (!request.identity!.clusterAdmin) throw new ApiError('forbidden', `Cannot reset TOTP of user "${user}": permission denied`, { details: [{ path: 'authorization', message: 'needs the cluster-admin role' }] });
        pending.delete(user);
        if (!(await opts.state.reset(user))) throw new ApiError('not_found', `Cannot find TOTP enrolment of user "${user}"`);
        return { user, enrolled: false };
      },
    );
  };
}
