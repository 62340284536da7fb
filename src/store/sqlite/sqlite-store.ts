import Database from 'better-sqlite3';
import { ApiError } from '../../api/errors.ts';
import { defaultProject, kindDef } from '../../api/kinds.ts';
import type { KindDef, Reference } from '../../api/kind.ts';
import type { AnyObject } from '../../api/object.ts';
import type { AuditEntry, HistoryList, ObjectList, WatchEvent } from '../../api/wire.ts';
import { systemClock, type Clock } from '../../base/clock.ts';
import { objectId } from '../../base/ids.ts';
import { checkObject, checkStatus, refProject, type CheckLookup } from '../check-object.ts';
import { fieldChanges, indexedFields, statusFields } from '../fields.ts';
import { decodeContinue, encodeContinue, listSql } from '../list-sql.ts';
import { sameContent, sameJson } from '../same-content.ts';
import {
  defaultCompactionPolicy,
  type AuditQuery,
  type Credential,
  type CompactionPolicy,
  type CreateInput,
  type ListQuery,
  type ObjectRef,
  type Store,
  type StatusResult,
  type StatusWrite,
  type StoredObject,
  type UpdateInput,
  type WatchQuery,
  type WriteMeta,
} from '../store.ts';
import { replayThenLive, WatchHub } from '../watch-hub.ts';
import { schema } from './schema.ts';
import { SqliteCredentials, type CredentialMatch } from './sqlite-credentials.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';
import { GroupCommit, type Outcome } from './group-commit.ts';

export interface SqliteStoreOptions {
  /** A file path, or ':memory:'. */
  path: string;
  clock?: Clock;
  /**
   * `full` (default) fsyncs every commit, surviving power loss; `process`
   * survives a crash of the process only (WAL with synchronous=NORMAL).
   */
  durability?: 'full' | 'process';
}

type Row = { doc: string };
type ListRow = Row & { project: string; name: string };
type HistoryRow = { revision: number; op: 'put' | 'delete'; author: string; reason: string | null; time: string; doc: string };

const idPattern = /^[a-z]+_[0-9A-HJKMNP-TV-Z]{26}$/;

/**
 * The embedded store: one SQLite file in WAL mode. Writes queue up and commit
 * together (`GroupCommit`), each in its own savepoint so one failing write
 * leaves the others of its batch intact.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly clock: Clock;
  private readonly hub = new WatchHub();
  private rev: number;
  private readonly commits: GroupCommit;
  private readonly stmt;
  private readonly credentials: SqliteCredentials;
  private checkpointer: WalCheckpointer | undefined;

  constructor(opts: SqliteStoreOptions) {
    this.clock = opts.clock ?? systemClock;
    this.db = new Database(opts.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.durability === 'process' ? 'NORMAL' : 'FULL'}`);
    this.db.pragma('busy_timeout = 5000');
    // Each write's savepoint journals the pages it touches; on disk that was ~60 pwrite calls per create.
    this.db.pragma('temp_store = MEMORY');
    // Checkpoints run off the event loop (see WalCheckpointer); this one, every 64 MiB of WAL, is the fallback.
    this.db.pragma('wal_autocheckpoint = 16384');
    if (opts.path !== ':memory:' && opts.path !== '') {
      this.checkpointer = new WalCheckpointer(opts.path, () => {
        this.checkpointer = undefined;
      });
    }
    // 64 MiB of pages instead of 2: list pages read documents by id in name order, all over the file.
    this.db.pragma('cache_size = -65536');
    this.db.exec(schema);
    const db = this.db;
    this.stmt = {
      meta: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare('UPDATE meta SET value = ? WHERE key = ?'),
      byId: db.prepare<[string, string], Row>('SELECT doc FROM objects WHERE id = ? AND kind = ?'),
      byName: db.prepare<[string, string, string], Row>('SELECT doc FROM objects WHERE kind = ? AND project = ? AND name = ?'),
      allOf: db.prepare<[string, string], Row>('SELECT doc FROM objects WHERE kind = ? AND project = ?'),
      insertObject: db.prepare('INSERT INTO objects (id, kind, project, name, revision, doc) VALUES (?, ?, ?, ?, ?, ?)'),
      updateObject: db.prepare('UPDATE objects SET revision = ?, doc = ? WHERE id = ?'),
      deleteObject: db.prepare('DELETE FROM objects WHERE id = ?'),
      // One call per object for all its rows, passed as a JSON array of [path, value] pairs.
      insertFields: db.prepare<[string, string, string]>(
        'INSERT OR IGNORE INTO fields (kind, path, v, id) SELECT ?, value->>0, value->>1, ? FROM json_each(?)',
      ),
      dropFields: db.prepare<[string, string, string]>(
        'DELETE FROM fields WHERE kind = ? AND id = ? AND (path, v) IN (SELECT value->>0, value->>1 FROM json_each(?))',
      ),
      deleteFields: db.prepare('DELETE FROM fields WHERE id = ?'),
      insertRef: db.prepare('INSERT OR IGNORE INTO refs (to_kind, to_project, to_name, from_id) VALUES (?, ?, ?, ?)'),
      deleteRefs: db.prepare('DELETE FROM refs WHERE from_id = ?'),
      referrers: db.prepare<[string, string, string], { from_id: string }>(
        'SELECT from_id FROM refs WHERE to_kind = ? AND to_project = ? AND to_name = ? LIMIT 5',
      ),
      anyInProject: db.prepare<[string], { kind: string; name: string }>('SELECT kind, name FROM objects WHERE project = ? LIMIT 5'),
      kindName: db.prepare<[string], { kind: string; name: string }>('SELECT kind, name FROM objects WHERE id = ?'),
      insertHistory: db.prepare(
        'INSERT INTO history (revision, id, kind, project, name, op, author, reason, time, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      historyAt: db.prepare<[string, number], HistoryRow>(
        'SELECT revision, op, author, reason, time, doc FROM history WHERE id = ? AND revision <= ? ORDER BY revision DESC LIMIT 1',
      ),
      historyIdByName: db.prepare<[string, string, string, number], { id: string }>(
        'SELECT id FROM history WHERE kind = ? AND project = ? AND name = ? AND revision <= ? ORDER BY revision DESC LIMIT 1',
      ),
      historyKind: db.prepare<[string], { kind: string; project: string }>('SELECT kind, project FROM history WHERE id = ? LIMIT 1'),
      historyOf: db.prepare<[string, number, number], HistoryRow>(
        'SELECT revision, op, author, reason, time, doc FROM history WHERE id = ? AND revision < ? ORDER BY revision DESC LIMIT ?',
      ),
      insertAudit: db.prepare('INSERT INTO audit (doc) VALUES (?)'),
      listAudit: db.prepare<[number, number], { id: number; doc: string }>('SELECT id, doc FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?'),
    };
    this.rev = this.metaValue('revision');
    this.credentials = new SqliteCredentials(db);
    this.commits = new GroupCommit(db, {
      revision: () => this.rev,
      setRevision: (rev) => (this.rev = rev),
      persistRevision: (rev) => this.stmt.setMeta.run(rev, 'revision'),
      committed: (events) => {
        this.checkpointer?.committed();
        for (const ev of events) this.hub.publish(ev);
      },
    });
  }

  /** Statements built per query (lists, watch replays), prepared once per distinct text. */
  private readonly built = new Map<string, Database.Statement<unknown[]>>();

  private prepared<R>(text: string): Database.Statement<unknown[], R> {
    let stmt = this.built.get(text);
    if (!stmt) {
      if (this.built.size >= 200) this.built.clear();
      stmt = this.db.prepare<unknown[]>(text);
      this.built.set(text, stmt);
    }
    return stmt as Database.Statement<unknown[], R>;
  }

  private metaValue(key: string): number {
    return this.stmt.meta.get(key)?.value ?? 0;
  }

  async revision(): Promise<number> {
    return this.rev;
  }

  async compactedRevision(): Promise<number> {
    return this.metaValue('compacted');
  }

  // ---- writes ---------------------------------------------------------------

  /** Parsed referenced objects (projects, images, networks…) by their text: every create reads the same few. */
  private readonly referenced = new Map<string, AnyObject>();

  private lookup(): CheckLookup {
    return {
      byName: (kind, project, name) => {
        const row = this.stmt.byName.get(kind, project, name);
        if (!row) return undefined;
        let doc = this.referenced.get(row.doc);
        if (!doc) {
          if (this.referenced.size >= 256) this.referenced.clear();
          doc = JSON.parse(row.doc) as AnyObject;
          this.referenced.set(row.doc, doc);
        }
        return doc;
      },
      all: (kind, project) => this.stmt.allOf.all(kind, project).map((r) => JSON.parse(r.doc) as AnyObject),
    };
  }

  private project(def: KindDef, project: string | undefined): string {
    return def.scope === 'project' ? (project ?? defaultProject) : '';
  }

  /** Appends a version to the history; `json` is the document's text, encoded once per write. */
  private record(op: 'put' | 'delete', doc: AnyObject, json: string, meta: WriteMeta): Required<Outcome<AnyObject>> {
    this.stmt.insertHistory.run(
      doc.revision,
      doc.id,
      doc.kind,
      doc.project ?? '',
      doc.name,
      op,
      meta.author,
      meta.reason ?? null,
      doc.updatedAt,
      json,
    );
    return { result: doc, event: { type: op, revision: doc.revision, object: doc } };
  }

  /**
   * Brings the field index of an object from `before` (absent on create) to
   * `doc`, touching only rows that changed; `refs` replaces its references.
   */
  private index(def: KindDef, doc: AnyObject, refs: Reference[], before?: AnyObject): void {
    this.reindex(def.kind, doc.id, before ? indexedFields(before) : [], indexedFields(doc));
    if (before) this.stmt.deleteRefs.run(doc.id);
    for (const r of refs) this.stmt.insertRef.run(r.kind, refProject(kindDef(r.kind), doc.project), r.name, doc.id);
  }

  /** Turns an object's field index rows `before` into `after`, in at most two statements. */
  private reindex(kind: string, id: string, before: [string, string][], after: [string, string][]): void {
    const { added, removed } = fieldChanges(before, after);
    if (removed.length) this.stmt.dropFields.run(kind, id, JSON.stringify(removed));
    if (added.length) this.stmt.insertFields.run(kind, id, JSON.stringify(added));
  }

  create(input: CreateInput, meta: WriteMeta): Promise<AnyObject> {
    return this.commits.write(() => {
      const def = kindDef(input.kind);
      const project = this.project(def, input.project);
      if (this.stmt.byName.get(def.kind, project, input.name))
        throw new ApiError('already_exists', `Cannot create ${def.kind} "${input.name}": it already exists`, {
          details: [{ path: '/name', message: 'already exists' }],
        });
      const now = new Date(this.clock.now()).toISOString();
      const doc: AnyObject = {
        kind: def.kind,
        id: objectId(def.idPrefix, this.clock.now()),
        name: input.name,
        ...(def.scope === 'project' ? { project } : {}),
        labels: input.labels ?? {},
        metadata: input.metadata ?? {},
        spec: input.spec,
        status: input.status ?? {},
        revision: this.rev + 1,
        createdAt: now,
        updatedAt: now,
        updatedBy: meta.author,
      };
      const refs = checkObject(def, doc, this.lookup(), kindDef);
      this.rev = doc.revision;
      const json = JSON.stringify(doc);
      this.stmt.insertObject.run(doc.id, def.kind, project, doc.name, doc.revision, json);
      this.index(def, doc, refs);
      return this.record('put', doc, json, meta);
    });
  }

  /** Writes a new version with labels, metadata and spec replaced and fully checked; no change spends no revision. */
  update(ref: ObjectRef, input: UpdateInput, meta: WriteMeta): Promise<AnyObject> {
    return this.commits.write(() => {
      const { def, current } = this.current(ref, meta);
      if (sameContent(current, input)) return { result: current };
      const doc: AnyObject = {
        ...current,
        labels: input.labels,
        metadata: input.metadata,
        spec: input.spec,
        revision: this.rev + 1,
        updatedAt: new Date(this.clock.now()).toISOString(),
        updatedBy: meta.author,
      };
      const refs = checkObject(def, doc, this.lookup(), kindDef, current);
      this.rev = doc.revision;
      const json = JSON.stringify(doc);
      this.stmt.updateObject.run(doc.revision, json, doc.id);
      this.index(def, doc, refs, current);
      return this.record('put', doc, json, meta);
    });
  }

  updateStatus(ref: ObjectRef, status: Record<string, unknown>, meta: WriteMeta): Promise<AnyObject> {
    return this.commits.write(() => this.writeStatus(ref, status, meta));
  }

  async updateStatuses(writes: StatusWrite[], meta: Omit<WriteMeta, 'ifRevision'>): Promise<StatusResult[]> {
    const results = await this.commits.writeEach(
      writes.map((w) => () => this.writeStatus(w.ref, w.status, w.ifRevision === undefined ? meta : { ...meta, ifRevision: w.ifRevision })),
    );
    return results.map((r) => (r.ok ? { ok: true, object: r.result } : r));
  }

  /**
   * A new version with only the status replaced: checked against the status
   * schema alone, only its changed `status.` index rows rewritten, references
   * left as they are; no change spends no revision.
   */
  private writeStatus(ref: ObjectRef, status: Record<string, unknown>, meta: WriteMeta): Outcome<AnyObject> {
    const { def, current } = this.current(ref, meta);
    if (sameJson(current.status, status)) return { result: current };
    checkStatus(def, status);
    const doc: AnyObject = {
      ...current,
      status,
      revision: this.rev + 1,
      updatedAt: new Date(this.clock.now()).toISOString(),
      updatedBy: meta.author,
    };
    this.rev = doc.revision;
    const json = JSON.stringify(doc);
    this.stmt.updateObject.run(doc.revision, json, doc.id);
    this.reindex(def.kind, doc.id, statusFields(current.status), statusFields(status));
    return this.record('put', doc, json, meta);
  }

  delete(ref: ObjectRef, meta: WriteMeta): Promise<AnyObject> {
    return this.commits.write(() => {
      const { def, current } = this.current(ref, meta);
      const blockers =
        def.kind === 'project'
          ? this.stmt.anyInProject.all(current.name)
          : this.stmt.referrers
              .all(def.kind, current.project ?? '', current.name)
              .map((r) => this.stmt.kindName.get(r.from_id)!);
      if (blockers.length)
        throw new ApiError('conflict', `Cannot delete ${def.kind} "${current.name}": it is in use by ${blockers.map((b) => `${b.kind} "${b.name}"`).join(', ')}`);
      const doc: AnyObject = {
        ...current,
        revision: this.rev + 1,
        updatedAt: new Date(this.clock.now()).toISOString(),
        updatedBy: meta.author,
      };
      this.rev = doc.revision;
      this.stmt.deleteObject.run(doc.id);
      this.stmt.deleteFields.run(doc.id);
      this.stmt.deleteRefs.run(doc.id);
      return this.record('delete', doc, JSON.stringify(doc), meta);
    });
  }

  /** The live object a write targets, after the If-Match check. */
  private current(ref: ObjectRef, meta: WriteMeta): { def: KindDef; current: AnyObject } {
    const def = kindDef(ref.kind);
    const current = this.live(def, ref);
    if (meta.ifRevision !== undefined && meta.ifRevision !== current.revision)
      throw new ApiError(
        'precondition_failed',
        `Cannot change ${def.kind} "${current.name}": it is at revision ${current.revision}, not ${meta.ifRevision}`,
      );
    return { def, current };
  }

  // ---- reads ----------------------------------------------------------------

  private live(def: KindDef, ref: ObjectRef): AnyObject {
    const row = idPattern.test(ref.idOrName)
      ? this.stmt.byId.get(ref.idOrName, def.kind)
      : this.stmt.byName.get(def.kind, this.project(def, ref.project), ref.idOrName);
    const doc = parse(row);
    if (!doc || (def.scope === 'project' && ref.project && ref.project !== '*' && doc.project !== ref.project))
      throw notFound(def, ref);
    return doc;
  }

  /** The id an object had at a revision, live or deleted. */
  private idAt(def: KindDef, ref: ObjectRef, revision: number): string {
    if (idPattern.test(ref.idOrName)) {
      const found = this.stmt.historyKind.get(ref.idOrName);
      const otherProject = def.scope === 'project' && ref.project !== '*' && found?.project !== this.project(def, ref.project);
      if (found?.kind !== def.kind || otherProject) throw notFound(def, ref);
      return ref.idOrName;
    }
    const hit = this.stmt.historyIdByName.get(def.kind, this.project(def, ref.project), ref.idOrName, revision);
    if (!hit) throw notFound(def, ref);
    return hit.id;
  }

  async get(ref: ObjectRef, opts: { atRevision?: number } = {}): Promise<AnyObject> {
    const def = kindDef(ref.kind);
    if (opts.atRevision === undefined) return this.live(def, ref);
    const at = opts.atRevision;
    if (at > this.rev)
      throw new ApiError('invalid', `Cannot read revision ${at}: the newest is ${this.rev}`, {
        details: [{ path: 'revision', message: 'in the future' }],
      });
    const compacted = this.metaValue('compacted');
    let row: HistoryRow | undefined;
    try {
      row = this.stmt.historyAt.get(this.idAt(def, ref, at), at);
    } catch (e) {
      if (at <= compacted) throw gone(at, compacted);
      throw e;
    }
    if (!row) throw at <= compacted ? gone(at, compacted) : notFound(def, ref);
    if (row.op === 'delete') throw notFound(def, ref);
    return JSON.parse(row.doc) as AnyObject;
  }

  async list(q: ListQuery): Promise<ObjectList> {
    const page = await this.listStored(q);
    return { ...page, items: page.items.map((o) => JSON.parse(o.json) as AnyObject) };
  }

  async listStored(q: ListQuery): Promise<ObjectList<StoredObject>> {
    const def = kindDef(q.kind);
    const limit = q.limit ?? 500;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new ApiError('invalid', `Invalid limit ${limit}: expected 1-1000`, { details: [{ path: 'limit', message: 'expected 1-1000' }] });
    const project = def.scope === 'cluster' ? '' : q.project === '*' ? undefined : (q.project ?? defaultProject);
    const sql = listSql({
      kind: def.kind,
      ...(project !== undefined ? { project } : {}),
      ...(q.selector ? { selector: q.selector } : {}),
      ...(q.where ? { where: q.where } : {}),
      ...(q.continue ? { after: decodeContinue(q.continue) } : {}),
      limit: limit + 1,
    });
    // One synchronous statement: the rows and the revision are of the same moment.
    const rows = this.prepared<ListRow>(sql.text).all(...sql.params);
    const items = rows.slice(0, limit).map((r): StoredObject => (r.project ? { name: r.name, project: r.project, json: r.doc } : { name: r.name, json: r.doc }));
    const last = items[items.length - 1];
    return {
      items,
      revision: this.rev,
      ...(rows.length > limit && last ? { continue: encodeContinue(last.project ?? '', last.name) } : {}),
    };
  }

  async history(ref: ObjectRef, opts: { limit?: number; continue?: string } = {}): Promise<HistoryList> {
    const def = kindDef(ref.kind);
    const limit = opts.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new ApiError('invalid', `Invalid limit ${limit}: expected 1-1000`, { details: [{ path: 'limit', message: 'expected 1-1000' }] });
    let before = this.rev + 1;
    if (opts.continue !== undefined) {
      before = Number(opts.continue);
      if (!/^\d{1,15}$/.test(opts.continue))
        throw new ApiError('invalid', 'Invalid continue token: it does not come from a previous page', {
          details: [{ path: 'continue', message: 'not a continue token' }],
        });
    }
    const id = this.idAt(def, ref, this.rev);
    const rows = this.stmt.historyOf.all(id, before, limit + 1);
    const items = rows.slice(0, limit).map((r) => ({
      revision: r.revision,
      op: r.op,
      author: r.author,
      ...(r.reason !== null ? { reason: r.reason } : {}),
      time: r.time,
      object: JSON.parse(r.doc) as AnyObject,
    }));
    const last = items[items.length - 1];
    return { items, ...(rows.length > limit && last ? { continue: String(last.revision) } : {}) };
  }

  watch(query: WatchQuery, signal: AbortSignal): AsyncIterable<WatchEvent> {
    const from = query.fromRevision;
    if (!Number.isInteger(from) || from < 0 || from > this.rev)
      throw new ApiError('invalid', `Cannot watch from revision ${from}: the newest is ${this.rev}`, {
        details: [{ path: 'revision', message: from > this.rev ? 'in the future' : 'not a revision' }],
      });
    const compacted = this.metaValue('compacted');
    if (from < compacted) throw gone(from, compacted);
    for (const k of query.kinds ?? []) kindDef(k);
    return replayThenLive(this.hub, query, signal, (after) => this.replay(query, after));
  }

  private async *replay(q: WatchQuery, after: number): AsyncGenerator<WatchEvent & { type: 'put' | 'delete' }> {
    const params: unknown[] = [];
    let where = 'revision > ?';
    const kinds = q.kinds ?? [];
    if (kinds.length) {
      where += ` AND kind IN (${kinds.map(() => '?').join(',')})`;
      params.push(...kinds);
    }
    if (q.project && q.project !== '*') {
      where += ` AND project IN ('', ?)`;
      params.push(q.project);
    }
    const stmt = this.prepared<HistoryRow>(`SELECT revision, op, author, reason, time, doc FROM history WHERE ${where} ORDER BY revision LIMIT 1000`);
    let last = after;
    while (true) {
      const rows = stmt.all(last, ...params);
      for (const r of rows) yield { type: r.op, revision: r.revision, object: JSON.parse(r.doc) as AnyObject };
      if (rows.length < 1000) return;
      last = rows[rows.length - 1]!.revision;
    }
  }

  async compact(policy: Partial<CompactionPolicy> = {}): Promise<{ compactedRevision: number }> {
    const p = { ...defaultCompactionPolicy, ...policy };
    const cutoff = new Date(this.clock.now() - p.retainMs).toISOString();
    const run = this.db.transaction(() => {
      const horizon = this.db
        .prepare<[number, string], { r: number | null }>('SELECT max(revision) AS r FROM history WHERE revision <= ? AND time < ?')
        .get(this.rev - p.retainRevisions, cutoff)?.r;
      const previous = this.metaValue('compacted');
      if (!horizon || horizon <= previous) return previous;
      this.db
        .prepare(
          `DELETE FROM history WHERE revision <= ? AND revision NOT IN (
             SELECT revision FROM (
               SELECT h.revision, ROW_NUMBER() OVER (PARTITION BY h.id ORDER BY h.revision DESC) AS rn
               FROM history h JOIN objects o ON o.id = h.id
             ) WHERE rn <= ?)`,
        )
        .run(horizon, p.keepPerObject);
      this.stmt.setMeta.run(horizon, 'compacted');
      return horizon;
    });
    return { compactedRevision: run() };
  }

  /** Audit entries ride the group commit with the writes they describe: no extra fsync per request. */
  appendAudit(entry: Omit<AuditEntry, 'id'>): Promise<void> {
    return this.commits.write(() => {
      this.stmt.insertAudit.run(JSON.stringify(entry));
      return { result: undefined };
    });
  }

  async listAudit(q: AuditQuery): Promise<AuditEntry[]> {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    return this.stmt.listAudit
      .all(q.before ?? Number.MAX_SAFE_INTEGER, limit)
      .map((r) => ({ id: r.id, ...(JSON.parse(r.doc) as Omit<AuditEntry, 'id'>) }));
  }

  putCredential(c: Credential): Promise<void> {
    return this.credentials.put(c);
  }

  getCredential(id: string): Promise<Credential | undefined> {
    return this.credentials.get(id);
  }

  useCredential(id: string, at: string): Promise<boolean> {
    return this.credentials.use(id, at);
  }

  revokeCredentials(match: CredentialMatch): Promise<number> {
    return this.credentials.revoke(match);
  }

  listCredentials(match: { type: Credential['type']; subject?: string }): Promise<Credential[]> {
    return this.credentials.list(match);
  }

  async close(): Promise<void> {
    this.hub.closeAll();
    if (this.commits.busy) await new Promise((r) => setImmediate(r));
    await this.checkpointer?.close();
    this.db.close();
  }
}

function parse(row: Row | undefined): AnyObject | undefined {
  return row ? (JSON.parse(row.doc) as AnyObject) : undefined;
}

function notFound(def: KindDef, ref: ObjectRef): ApiError {
  const where = def.scope === 'project' ? ` in project "${ref.project ?? defaultProject}"` : '';
  return new ApiError('not_found', `Cannot find ${def.kind} "${ref.idOrName}"${where}`);
}

function gone(revision: number, compacted: number): ApiError {
  return new ApiError('gone', `Revision ${revision} was compacted (history kept after ${compacted}): list again and watch from its revision`);
}
