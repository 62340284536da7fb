import { ApiError } from '../api/errors.ts';
import { formatIpv4, formatIpv6 } from '../api/ip.ts';
import type { Clock } from '../base/clock.ts';
import type { AuthRequest } from './authenticator.ts';
import { parseBasic } from './basic-credentials.ts';
import { parseSource } from './source-cidr.ts';
import { totpScheme } from './totp.ts';

/** A bucket: `burst` failures at once, refilled at `perMinute`. */
export interface BucketPolicy {
  burst: number;
  perMinute: number;
}

export interface RateLimiterOptions {
  clock: Clock;
  perSource?: BucketPolicy;
  perUser?: BucketPolicy;
  /** At most this many buckets per kind are kept; the least recently used go first. */
  maxKeys?: number;
}

/** Who failed: the client's address and, when the credential names one, the user. */
export interface FailureKey {
  source: string;
  user?: string;
}

/** The key to limit a request by: its source, and the user a `Basic` or `TOTP` header names. */
export function failureKey(req: AuthRequest): FailureKey {
  const user = (parseBasic(req.authorization) ?? parseBasic(req.authorization, totpScheme))?.user;
  return user === undefined ? { source: req.source } : { source: req.source, user };
}

interface Bucket {
  tokens: number;
  at: number;
}

/** One set of token buckets (one per key), bounded in size. */
class Buckets {
  private readonly map = new Map<string, Bucket>();

  constructor(
    private readonly policy: BucketPolicy,
    private readonly maxKeys: number,
  ) {}

  /** Tokens left for `key` at `now`, after refilling. */
  private level(key: string, now: number): Bucket {
    const b = this.map.get(key);
    if (!b) return { tokens: this.policy.burst, at: now };
    const refill = ((now - b.at) / 60_000) * this.policy.perMinute;
    return { tokens: Math.min(this.policy.burst, b.tokens + refill), at: now };
  }

  /** Milliseconds until `key` may try again; 0 when it may now. */
  waitMs(key: string, now: number): number {
    const b = this.level(key, now);
    if (b.tokens >= 1) return 0;
    // Rounded to the microsecond first, so float error never adds a whole millisecond (or second).
    return Math.ceil(Math.round(((1 - b.tokens) / this.policy.perMinute) * 60_000_000) / 1000);
  }

  take(key: string, now: number): void {
    const b = this.level(key, now);
    b.tokens = Math.max(0, b.tokens - 1);
    this.map.delete(key);
    this.map.set(key, b);
    if (this.map.size > this.maxKeys) this.map.delete(this.map.keys().next().value!);
  }
}

/** IPv6 clients get a /64 each (one host usually owns the whole /64); IPv4-mapped addresses count as IPv4. */
export function sourceKey(source: string): string {
  const ip = parseSource(source);
  if (!ip) return source;
  if (ip.family === 4) return formatIpv4(ip.value);
  return `${formatIpv6((ip.value >> 64n) << 64n)}/64`;
}

/**
 * Failed-authentication limiting per source and per user (token buckets on an
 * injected clock). Call `check` before authenticating and `fail` after a
 * failure; a caller over either limit gets `rate_limited` with `Retry-After`.
 */
export class RateLimiter {
  private readonly sources: Buckets;
  private readonly users: Buckets;

  constructor(private readonly opts: RateLimiterOptions) {
    const max = opts.maxKeys ?? 100_000;
    this.sources = new Buckets(opts.perSource ?? { burst: 20, perMinute: 10 }, max);
    this.users = new Buckets(opts.perUser ?? { burst: 10, perMinute: 5 }, max);
  }

  check(key: FailureKey): void {
    const now = this.opts.clock.now();
    const wait = Math.max(this.sources.waitMs(sourceKey(key.source), now), key.user !== undefined ? this.users.waitMs(key.user, now) : 0);
    if (wait === 0) return;
    const seconds = Math.ceil(wait / 1000);
    throw new ApiError('rate_limited', `Cannot authenticate: too many failed attempts: retry in ${seconds} s`, {
      headers: { 'retry-after': String(seconds) },
    });
  }

  fail(key: FailureKey): void {
    const now = this.opts.clock.now();
    this.sources.take(sourceKey(key.source), now);
    if (key.user !== undefined) this.users.take(key.user, now);
  }
}
