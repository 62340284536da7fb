import Database from 'better-sqlite3';
import type { AnyObject } from '../api/object.ts';

/**
 * The agent's local copy of its desired state (its VMs and what they
 * reference), the last revision applied, and status reports not yet
 * delivered. Cut off from the server, the agent runs from this.
 *
 * Reads come from memory (the objects are parsed once, when they arrive, and
 * must not be mutated by callers); every write goes to SQLite first. WAL with
 * `synchronous = NORMAL` survives the agent being killed at any point; a
 * power loss may lose the last writes, which the next list from the server
 * and the next pass put back.
 */
export class AgentCache {
  private readonly db: Database.Database;
  private readonly objects = new Map<string, Map<string, AnyObject>>();
  private readonly sql;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, key));
      CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, status TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
    this.sql = {
      put: this.db.prepare<[string, string, string]>('INSERT OR REPLACE INTO objects (kind, key, doc) VALUES (?, ?, ?)'),
      remove: this.db.prepare<[string, string]>('DELETE FROM objects WHERE kind = ? AND key = ?'),
      removeKind: this.db.prepare<[string]>('DELETE FROM objects WHERE kind = ?'),
      revision: this.db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'revision'"),
      setRevision: this.db.prepare<[string]>("INSERT OR REPLACE INTO meta (key, value) VALUES ('revision', ?)"),
      queue: this.db.prepare<[string, string]>('INSERT OR REPLACE INTO outbox (id, status) VALUES (?, ?)'),
      pending: this.db.prepare<[], { id: string; status: string }>('SELECT id, status FROM outbox'),
      delivered: this.db.prepare<[string, string]>('DELETE FROM outbox WHERE id = ? AND status = ?'),
    };
    for (const row of this.db.prepare<[], { kind: string; key: string; doc: string }>('SELECT kind, key, doc FROM objects').iterate()) {
      this.ofKind(row.kind).set(row.key, JSON.parse(row.doc) as AnyObject);
    }
  }

  /** VMs are keyed by id; what they reference by project/name (cluster kinds: /name). */
  static key(o: AnyObject): string {
    return o.kind === 'vm' ? o.id : `${o.project ?? ''}/${o.name}`;
  }

  private ofKind(kind: string): Map<string, AnyObject> {
    let m = this.objects.get(kind);
    if (!m) this.objects.set(kind, (m = new Map()));
    return m;
  }

  put(o: AnyObject): void {
    const key = AgentCache.key(o);
    this.sql.put.run(o.kind, key, JSON.stringify(o));
    this.ofKind(o.kind).set(key, o);
  }

  remove(o: AnyObject): void {
    const key = AgentCache.key(o);
    this.sql.remove.run(o.kind, key);
    this.objects.get(o.kind)?.delete(key);
  }

  /** Replaces everything of the given kinds in one transaction (after a full list). */
  replaceAll(kinds: string[], objects: AnyObject[], revision: number): void {
    this.db.transaction(() => {
      for (const k of kinds) this.sql.removeKind.run(k);
      for (const o of objects) this.sql.put.run(o.kind, AgentCache.key(o), JSON.stringify(o));
      this.sql.setRevision.run(String(revision));
    })();
    for (const k of kinds) this.objects.delete(k);
    for (const o of objects) this.ofKind(o.kind).set(AgentCache.key(o), o);
  }

  get(kind: string, key: string): AnyObject | undefined {
    return this.objects.get(kind)?.get(key);
  }

  all(kind: string): AnyObject[] {
    return [...(this.objects.get(kind)?.values() ?? [])];
  }

  revision(): number {
    return Number(this.sql.revision.get()?.value ?? 0);
  }

  setRevision(revision: number): void {
    this.sql.setRevision.run(String(revision));
  }

  /** Queues a VM's status; a newer report for the same VM replaces an older one. */
  queueStatus(id: string, status: Record<string, unknown>): void {
    this.sql.queue.run(id, JSON.stringify(status));
  }

  pendingStatus(): { id: string; status: Record<string, unknown> }[] {
    return this.sql.pending.all().map((r) => ({ id: r.id, status: JSON.parse(r.status) as Record<string, unknown> }));
  }

  /** Drops a delivered report unless a newer one replaced it meanwhile. */
  delivered(id: string, status: Record<string, unknown>): void {
    this.sql.delivered.run(id, JSON.stringify(status));
  }

  close(): void {
    this.db.close();
  }
}
