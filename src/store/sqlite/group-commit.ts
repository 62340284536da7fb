import type Database from 'better-sqlite3';
import { ApiError } from '../../api/errors.ts';
import type { WatchEvent } from '../../api/wire.ts';

/** A queued write: its result, and the change to publish once it is committed (none for audit entries and no-ops). */
export interface Outcome<T> {
  result: T;
  event?: WatchEvent & { type: 'put' | 'delete' };
}

interface Pending {
  run: () => Outcome<unknown>;
  resolve: (o: unknown) => void;
  reject: (e: unknown) => void;
}

/** What a batch needs of its store: the revision counter (restored when writes roll back) and where committed changes go. */
export interface CommitTarget {
  revision(): number;
  setRevision(rev: number): void;
  /** Inside the transaction, before COMMIT, when the batch moved the revision. */
  persistRevision(rev: number): void;
  committed(events: (WatchEvent & { type: 'put' | 'delete' })[]): void;
}

/**
 * Group commit: writes queued in one tick run in one transaction, each in
 * its own savepoint, so one failing write leaves the others of its batch
 * intact; results and watch events are released only after COMMIT.
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;
  private readonly savepoint;
  private readonly release;
  private readonly rollbackTo;

  constructor(
    private readonly db: Database.Database,
    private readonly target: CommitTarget,
  ) {
    this.savepoint = db.prepare('SAVEPOINT w');
    this.release = db.prepare('RELEASE w');
    this.rollbackTo = db.prepare('ROLLBACK TO w');
  }

  /** Whether writes wait for their commit. */
  get busy(): boolean {
    return this.pending.length > 0;
  }

  /** Queues a write; all writes queued in one tick commit in one transaction. */
  write<T>(run: () => Outcome<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, resolve: resolve as (o: unknown) => void, reject });
      this.schedule();
    });
  }

  /** Queues several writes into the same commit; an `ApiError` fails only its own item, any other error the call. */
  writeEach<T>(runs: (() => Outcome<T>)[]): Promise<({ ok: true; result: T } | { ok: false; error: ApiError })[]> {
    return new Promise((resolve, reject) => {
      const results: ({ ok: true; result: T } | { ok: false; error: ApiError })[] = new Array(runs.length);
      let left = runs.length;
      let failed = false;
      const settle = (i: number, r: { ok: true; result: T } | { ok: false; error: ApiError }) => {
        results[i] = r;
        if (--left === 0 && !failed) resolve(results);
      };
      if (!left) return resolve(results);
      runs.forEach((run, i) =>
        this.pending.push({
          run,
          resolve: (result) => settle(i, { ok: true, result: result as T }),
          reject: (error) => {
            if (error instanceof ApiError) return settle(i, { ok: false, error });
            if (!failed) reject(error);
            failed = true;
          },
        }),
      );
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    const outcomes: ({ ok: true; outcome: Outcome<unknown> } | { ok: false; error: unknown })[] = [];
    const startRev = this.target.revision();
    try {
      this.db.exec('BEGIN IMMEDIATE');
      for (const p of batch) {
        const before = this.target.revision();
        this.savepoint.run();
        try {
          const outcome = p.run();
          this.release.run();
          outcomes.push({ ok: true, outcome });
        } catch (error) {
          this.rollbackTo.run();
          this.release.run();
          this.target.setRevision(before);
          outcomes.push({ ok: false, error });
        }
      }
      if (this.target.revision() !== startRev) this.target.persistRevision(this.target.revision());
      this.db.exec('COMMIT');
    } catch (error) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      this.target.setRevision(startRev);
      for (const p of batch) p.reject(error);
      return;
    }
    this.target.committed(outcomes.flatMap((o) => (o.ok && o.outcome.event ? [o.outcome.event] : [])));
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) p.resolve(o.outcome.result);
      else p.reject(o.error);
    });
  }
}
