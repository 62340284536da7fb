import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import type { Clock } from '../base/clock.ts';
import type { Authenticator, AuthRequest, AuthResult } from './authenticator.ts';
import { formatBasic, parseBasic } from './basic-credentials.ts';

/**
 * Credential format. A user enrolled in TOTP sends
 *
 *   Authorization: TOTP base64(user ":" password ":" code)
 *
 * where `code` is the current 6-digit code or one unused recovery code
 * (`xxxx-xxxx-xxxx-xxxx`). The user name has no colon and the code has none,
 * so a password may contain colons. Plain `Basic` still works for users who
 * are not enrolled (unless TOTP is required for everyone).
 */
export const totpScheme = 'TOTP';

/** The routes an unenrolled user reaches with a password alone when TOTP is required. */
const enrolmentPath = /^\/v1\/totp\/(enrol|confirm)$/;

const period = 30;
const window = 1;

/** One user's second factor as kept by the server; the secret is base32. */
export interface TotpRecord {
  secret: string;
  /** The last time step whose code was accepted; a code is never accepted twice. */
  lastStep: number;
  /** sha256 hex of each unused recovery code. */
  recoveryHashes: string[];
}

/** Where TOTP records live (the store, in the server); both updates must be atomic per user. */
export interface TotpState {
  get(user: string): Promise<TotpRecord | undefined>;
  /** Records `step` as used when it is later than the last used step; false when it is not (a replay). */
  claimStep(user: string, step: number): Promise<boolean>;
  /** Removes one recovery code hash; false when it is not there (unknown or already used). */
  useRecoveryCode(user: string, hash: string): Promise<boolean>;
}

/** TotpState in memory, for tests and single-process setups. */
export class MemoryTotpState implements TotpState {
  private readonly records = new Map<string, TotpRecord>();

  async put(user: string, record: TotpRecord): Promise<void> {
    this.records.set(user, structuredClone(record));
  }

  async get(user: string): Promise<TotpRecord | undefined> {
    const r = this.records.get(user);
    return r && structuredClone(r);
  }

  async claimStep(user: string, step: number): Promise<boolean> {
    const r = this.records.get(user);
    if (!r || step <= r.lastStep) return false;
    r.lastStep = step;
    return true;
  }

  async useRecoveryCode(user: string, hash: string): Promise<boolean> {
    const r = this.records.get(user);
    const i = r?.recoveryHashes.indexOf(hash) ?? -1;
    if (i < 0) return false;
    r!.recoveryHashes.splice(i, 1);
    return true;
  }
}

/** The hash a recovery code is kept as; dashes and case do not matter. */
export function hashRecoveryCode(code: string): string {
  return createHash('sha256').update(code.toLowerCase().replace(/-/g, ''), 'utf8').digest('hex');
}

function recoveryCode(): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  const chars = [...randomBytes(16)].map((b) => alphabet[b & 31]).join('');
  return chars.match(/.{4}/g)!.join('-');
}

/**
 * Starts enrolment: a fresh 160-bit secret, its `otpauth://` URI for an
 * authenticator app, and 10 recovery codes shown once (80 bits each; only their
 * hashes are in `record`). Keep `record` only after `confirmTotp` accepts a code.
 */
export function enrolTotp(account: string, opts: { issuer?: string } = {}): { secret: string; uri: string; recoveryCodes: string[]; record: TotpRecord } {
  const secret = new Secret({ size: 20 });
  const uri = new TOTP({ issuer: opts.issuer ?? 'crowdcloud', label: account, secret, period, digits: 6, algorithm: 'SHA1' }).toString();
  const recoveryCodes = Array.from({ length: 10 }, recoveryCode);
  return { secret: secret.base32, uri, recoveryCodes, record: { secret: secret.base32, lastStep: 0, recoveryHashes: recoveryCodes.map(hashRecoveryCode) } };
}

/** The time step whose code `code` is, within one step either side of `now`; every candidate is compared in full. */
export function totpStep(secret: string, code: string, now: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const key = Secret.fromBase32(secret);
  const given = Buffer.from(code);
  const current = Math.floor(now / 1000 / period);
  let found: number | undefined;
  for (let d = -window; d <= window; d++) {
    const want = Buffer.from(TOTP.generate({ secret: key, period, timestamp: (current + d) * period * 1000 }));
    if (timingSafeEqual(want, given)) found ??= current + d;
  }
  return found;
}

/** Confirms enrolment with a first code; the record to keep (that code marked used), or undefined. */
export function confirmTotp(record: TotpRecord, code: string, now: number): TotpRecord | undefined {
  const step = totpStep(record.secret, code, now);
  return step === undefined ? undefined : { ...record, lastStep: step };
}

export interface TotpAuthenticatorOptions {
  /** The password check (htpasswd or LDAP) this adds a second factor to. */
  inner: Authenticator;
  state: TotpState;
  clock: Clock;
  /** Every user must be enrolled; otherwise only enrolled users need a code. */
  required?: boolean;
}

/**
 * A second factor over a password authenticator: claims the `TOTP` scheme
 * (see `totpScheme`), and refuses plain `Basic` for enrolled users.
 * Codes are accepted once; recovery codes once each.
 */
export class TotpAuthenticator implements Authenticator {
  readonly name: string;

  constructor(private readonly opts: TotpAuthenticatorOptions) {
    this.name = `${opts.inner.name}+totp`;
  }

  async authenticate(req: AuthRequest): Promise<AuthResult> {
    const totp = parseBasic(req.authorization, totpScheme);
    if (!totp) return this.withoutCode(req);
    const colon = totp.password.lastIndexOf(':');
    if (colon < 0) return { outcome: 'deny', reason: 'no code after the password' };
    const inner = await this.opts.inner.authenticate({ ...req, authorization: formatBasic(totp.user, totp.password.slice(0, colon)) });
    if (inner.outcome !== 'ok') return inner;
    const user = inner.identity.name;
    const code = totp.password.slice(colon + 1);
    const record = await this.opts.state.get(user);
    if (!record) return { outcome: 'deny', reason: 'not enrolled in TOTP' };
    if (/^\d{6}$/.test(code)) {
      const step = totpStep(record.secret, code, this.opts.clock.now());
      if (step === undefined) return { outcome: 'deny', reason: 'wrong code' };
      if (!(await this.opts.state.claimStep(user, step))) return { outcome: 'deny', reason: 'code already used' };
    } else if (!(await this.opts.state.useRecoveryCode(user, hashRecoveryCode(code)))) {
      return { outcome: 'deny', reason: 'wrong or used recovery code' };
    }
    return { outcome: 'ok', identity: { ...inner.identity, authenticator: this.name } };
  }

  /**
   * A password alone: fine for users without a second factor unless every user
   * needs one; then an unenrolled user may only reach enrolment itself.
   */
  private async withoutCode(req: AuthRequest): Promise<AuthResult> {
    const inner = await this.opts.inner.authenticate(req);
    if (inner.outcome !== 'ok') return inner;
    if (await this.opts.state.get(inner.identity.name)) return { outcome: 'deny', reason: 'second factor required' };
    if (this.opts.required && !enrolmentPath.test(req.path)) return { outcome: 'deny', reason: 'second factor required' };
    return inner;
  }
}
