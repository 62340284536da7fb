import type { TotpRecord, TotpState } from './totp.ts';

/** The store's credential record as this state keeps it (type `totp`, id `totp:<user>`, the record in `data`). */
export interface TotpCredential {
  id: string;
  type: 'totp';
  hash: string;
  subject: string;
  expiresAt: string;
  createdAt: string;
  createdBy: string;
  data: Record<string, unknown>;
}

/** What this state needs of the store's credentials API. */
export interface TotpCredentialStore {
  getCredential(id: string): Promise<{ type: string; revoked?: boolean; data: Record<string, unknown> } | undefined>;
  putCredential(c: TotpCredential): Promise<void>;
  revokeCredentials(match: { id: string; type: 'totp' }): Promise<number>;
}

const never = '9999-12-31T23:59:59.999Z';

/**
 * TOTP records kept as store credentials, so replay protection and used
 * recovery codes survive restarts. Each user's read-modify-write runs alone
 * (one server process writes a user's record at a time).
 */
export class CredentialTotpState implements TotpState {
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: TotpCredentialStore,
    private readonly now: () => number,
  ) {}

  /** The user's confirmed record; a revoked one (a reset) counts as not enrolled. */
  async get(user: string): Promise<TotpRecord | undefined> {
    const c = await this.store.getCredential(`totp:${user}`);
    return c?.type === 'totp' && c.revoked !== true ? (c.data as unknown as TotpRecord) : undefined;
  }

  /** Forgets a user's second factor (a lost device); false when the user had none. */
  reset(user: string): Promise<boolean> {
    return this.serial(user, async () => {
      if (!(await this.get(user))) return false;
      return (await this.store.revokeCredentials({ id: `totp:${user}`, type: 'totp' })) > 0;
    });
  }

  /** Enrols (or re-enrols) a user with a confirmed record. */
  async put(user: string, record: TotpRecord, by: string): Promise<void> {
    await this.serial(user, () => this.write(user, record, by));
  }

  claimStep(user: string, step: number): Promise<boolean> {
    return this.update(user, (r) => (step > r.lastStep ? { ...r, lastStep: step } : undefined));
  }

  useRecoveryCode(user: string, hash: string): Promise<boolean> {
    return this.update(user, (r) => (r.recoveryHashes.includes(hash) ? { ...r, recoveryHashes: r.recoveryHashes.filter((h) => h !== hash) } : undefined));
  }

  private update(user: string, change: (r: TotpRecord) => TotpRecord | undefined): Promise<boolean> {
    return this.serial(user, async () => {
      const r = await this.get(user);
      const next = r && change(r);
      if (!next) return false;
      await this.write(user, next, user);
      return true;
    });
  }

  private write(user: string, record: TotpRecord, by: string): Promise<void> {
    const at = new Date(this.now()).toISOString();
    return this.store.putCredential({ id: `totp:${user}`, type: 'totp', hash: '', subject: user, expiresAt: never, createdAt: at, createdBy: by, data: { ...record } });
  }

  private serial<T>(user: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(user) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const settled = run.catch(() => {});
    this.queues.set(user, settled);
    void settled.then(() => {
      if (this.queues.get(user) === settled) this.queues.delete(user);
    });
    return run;
  }
}
