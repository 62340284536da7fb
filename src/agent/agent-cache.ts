import Database from 'better-sqlite3';
import type { AnyObject } from '../api/object.ts';

/**
 * The agent's local copy of its desired state (its VMs and what they
 * reference), the last revision applied, and status reports not yet
 * delivered. Cut off from the server, the agent runs from this.
 */
export class AgentCache {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, key));
      CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, status TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
  }

  /** VMs are keyed by id; what they reference by project/name (cluster kinds: /name). */
  static key(o: AnyObject): string {
    return o.kind === 'vm' ? o.id : `${o.project ?? ''}/${o.name}`;
  }

  put(o: AnyObject): void {
    this.db.prepare('INSERT OR REPLACE INTO objects (kind, key, doc) VALUES (?, ?, ?)').run(o.kind, AgentCache.key(o), JSON.stringify(o));
  }

  remove(o: AnyObject): void {
    this.db.prepare('DELETE FROM objects WHERE kind = ? AND key = ?').run(o.kind, AgentCache.key(o));
  }

  /** Replaces everything of the given kinds in one transaction (after a full list). */
  replaceAll(kinds: string[], objects: AnyObject[], revision: number): void {
    this.db.transaction(() => {
      for (const k of kinds) this.db.prepare('DELETE FROM objects WHERE kind = ?').run(k);
      for (const o of objects) this.put(o);
      this.setRevision(revision);
    })();
  }

  get(kind: string, key: string): AnyObject | undefined {
    const row = this.db.prepare<[string, string], { doc: string }>('SELECT doc FROM objects WHERE kind = ? AND key = ?').get(kind, key);
    return row ? (JSON.parse(row.doc) as AnyObject) : undefined;
  }

  all(kind: string): AnyObject[] {
    return this.db.prepare<[string], { doc: string }>('SELECT doc FROM objects WHERE kind = ?').all(kind).map((r) => JSON.parse(r.doc) as AnyObject);
  }

  revision(): number {
    return Number(this.db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'revision'").get()?.value ?? 0);
  }

  setRevision(revision: number): void {
    this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('revision', ?)").run(String(revision));
  }

  /** Queues a VM's status; a newer report for the same VM replaces an older one. */
  queueStatus(id: string, status: Record<string, unknown>): void {
    this.db.prepare('INSERT OR REPLACE INTO outbox (id, status) VALUES (?, ?)').run(id, JSON.stringify(status));
  }

  pendingStatus(): { id: string; status: Record<string, unknown> }[] {
    return this.db
      .prepare<[], { id: string; status: string }>('SELECT id, status FROM outbox')
      .all()
      .map((r) => ({ id: r.id, status: JSON.parse(r.status) as Record<string, unknown> }));
  }

  /** Drops a delivered report unless a newer one replaced it meanwhile. */
  delivered(id: string, status: Record<string, unknown>): void {
    this.db.prepare('DELETE FROM outbox WHERE id = ? AND status = ?').run(id, JSON.stringify(status));
  }

  close(): void {
    this.db.close();
  }
}
