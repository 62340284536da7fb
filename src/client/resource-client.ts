import type { KindDef } from '../api/kind.ts';
import type { AnyObject } from '../api/object.ts';
import { parseFieldFilter } from '../api/field-filter.ts';
import { parseSelector } from '../api/selector.ts';
import type { Diff, HistoryList, ObjectList, WatchEvent } from '../api/wire.ts';
import type { QueryValue, Transport } from './transport.ts';
import { watchEvents, type WatchOptions } from './watch.ts';

/** Which project an call addresses; ignored for cluster-scoped kinds. `*` lists across projects. */
export interface InProject {
  project?: string;
}

export interface WriteOptions extends InProject {
  /** The revision the object must be at, sent as If-Match (stale: `precondition_failed`). */
  ifMatch?: number;
  reason?: string;
}

export interface ListOptions extends InProject {
  /** A label selector, checked locally before it is sent. */
  selector?: string;
  /** Equality filters `spec.x=v`/`metadata.y=v`, checked locally before they are sent. */
  where?: readonly string[];
  limit?: number;
  continue?: string;
}

/** The body of a PUT: spec required, the rest of the object optional (read-only fields must match). */
export type UpdateBody<T extends AnyObject> = Partial<T> & Pick<T, 'spec'>;

/** The body of a PATCH: a JSON merge patch of labels, metadata and spec. */
export interface MergePatch {
  labels?: Record<string, string | null>;
  metadata?: Record<string, unknown>;
  spec?: Record<string, unknown>;
}

/** Typed CRUD, history and watch for one kind, exactly as docs/api.md describes its routes. */
export class ResourceClient<T extends AnyObject = AnyObject, C = unknown> {
  constructor(
    readonly def: KindDef,
    private readonly http: Transport,
  ) {}

  private projectQuery(opts: InProject): Record<string, QueryValue> {
    return this.def.scope === 'project' && opts.project ? { project: opts.project } : {};
  }

  private path(name?: string, sub?: string): string {
    let p = `/v1/${this.def.plural}`;
    if (name !== undefined) p += `/${encodeURIComponent(name)}`;
    if (sub) p += `/${sub}`;
    return p;
  }

  async list(opts: ListOptions = {}): Promise<ObjectList<T>> {
    if (opts.selector) parseSelector(opts.selector);
    for (const w of opts.where ?? []) parseFieldFilter(w);
    return this.http.json({
      method: 'GET',
      path: this.path(),
      query: {
        ...this.projectQuery(opts),
        selector: opts.selector || undefined,
        where: opts.where?.length ? opts.where : undefined,
        limit: opts.limit,
        continue: opts.continue,
      },
    });
  }

  /** Every matching object, page after page. */
  async *listAll(opts: Omit<ListOptions, 'continue'> = {}): AsyncGenerator<T> {
    let next: string | undefined;
    do {
      const page = await this.list({ ...opts, continue: next });
      yield* page.items;
      next = page.continue;
    } while (next);
  }

  get(idOrName: string, opts: InProject & { revision?: number } = {}): Promise<T> {
    return this.http.json({ method: 'GET', path: this.path(idOrName), query: { ...this.projectQuery(opts), revision: opts.revision } });
  }

  create(body: C, opts: Omit<WriteOptions, 'ifMatch'> = {}): Promise<T> {
    return this.http.json({ method: 'POST', path: this.path(), query: this.projectQuery(opts), body, reason: opts.reason });
  }

  update(idOrName: string, body: UpdateBody<T>, opts: WriteOptions = {}): Promise<T> {
    return this.http.json({
      method: 'PUT',
      path: this.path(idOrName),
      query: this.projectQuery(opts),
      body,
      ifMatch: opts.ifMatch,
      reason: opts.reason,
    });
  }

  patch(idOrName: string, patch: MergePatch, opts: WriteOptions = {}): Promise<T> {
    return this.http.json({
      method: 'PATCH',
      path: this.path(idOrName),
      query: this.projectQuery(opts),
      body: patch,
      contentType: 'application/merge-patch+json',
      ifMatch: opts.ifMatch,
      reason: opts.reason,
    });
  }

  /** Deletes and answers with the last version. */
  delete(idOrName: string, opts: WriteOptions = {}): Promise<T> {
    return this.http.json({ method: 'DELETE', path: this.path(idOrName), query: this.projectQuery(opts), ifMatch: opts.ifMatch, reason: opts.reason });
  }

  putStatus(idOrName: string, status: T['status'], opts: WriteOptions = {}): Promise<T> {
    return this.http.json({
      method: 'PUT',
      path: this.path(idOrName, 'status'),
      query: this.projectQuery(opts),
      body: status,
      ifMatch: opts.ifMatch,
      reason: opts.reason,
    });
  }

  /** Versions of the object, newest first. */
  history(idOrName: string, opts: InProject & { limit?: number; continue?: string } = {}): Promise<HistoryList<T>> {
    return this.http.json({
      method: 'GET',
      path: this.path(idOrName, 'history'),
      query: { ...this.projectQuery(opts), limit: opts.limit, continue: opts.continue },
    });
  }

  diff(idOrName: string, opts: InProject & { from: number; to?: number }): Promise<Diff> {
    return this.http.json({
      method: 'GET',
      path: this.path(idOrName, 'diff'),
      query: { ...this.projectQuery(opts), from: opts.from, to: opts.to },
    });
  }

  /** A new write that restores the labels, metadata and spec of `revision`. */
  rollback(idOrName: string, opts: InProject & { revision: number; reason?: string }): Promise<T> {
    const body: { revision: number; reason?: string } = { revision: opts.revision };
    if (opts.reason !== undefined) body.reason = opts.reason;
    return this.http.json({ method: 'POST', path: this.path(idOrName, 'rollback'), query: this.projectQuery(opts), body });
  }

  /** Changes to objects of this kind after `revision`, until `signal` aborts. */
  watch(opts: Omit<WatchOptions, 'kinds'> = {}): AsyncGenerator<WatchEvent<T>> {
    const project = this.def.scope === 'project' ? opts.project : undefined;
    return watchEvents<T>(this.http, { ...opts, project, kinds: [this.def.kind] });
  }
}
