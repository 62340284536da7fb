import type Database from 'better-sqlite3';
import type { Credential } from '../store.ts';

export type CredentialMatch = { id?: string; subject?: string; type?: Credential['type'] };

type Row = { doc: string };

/** The credentials table of the SQLite store: hashes only, never versioned or watched. */
export class SqliteCredentials {
  private readonly putStmt;
  private readonly getStmt;

  constructor(private readonly db: Database.Database) {
    this.putStmt = db.prepare('INSERT OR REPLACE INTO credentials (id, type, subject, doc) VALUES (?, ?, ?, ?)');
    this.getStmt = db.prepare<[string], Row>('SELECT doc FROM credentials WHERE id = ?');
  }

  private write(c: Credential): void {
    this.putStmt.run(c.id, c.type, c.subject, JSON.stringify(c));
  }

  private read(id: string): Credential | undefined {
    const row = this.getStmt.get(id);
    return row ? (JSON.parse(row.doc) as Credential) : undefined;
  }

  async put(c: Credential): Promise<void> {
    this.write(c);
  }

  async get(id: string): Promise<Credential | undefined> {
    return this.read(id);
  }

  /** Marks a one-time credential used; false when unknown, used or revoked. */
  async use(id: string, at: string): Promise<boolean> {
    return this.db.transaction(() => {
      const c = this.read(id);
      if (!c || c.usedAt || c.revoked) return false;
      this.write({ ...c, usedAt: at });
      return true;
    })();
  }

  private matching(match: CredentialMatch): Credential[] {
    const where: string[] = [];
    const params: string[] = [];
    for (const [col, v] of [['id', match.id], ['subject', match.subject], ['type', match.type]] as const)
      if (v !== undefined) {
        where.push(`${col} = ?`);
        params.push(v);
      }
    const sql = `SELECT doc FROM credentials${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id`;
    return this.db.prepare<string[], Row>(sql).all(...params).map((r) => JSON.parse(r.doc) as Credential);
  }

  async revoke(match: CredentialMatch): Promise<number> {
    return this.db.transaction(() => {
      const found = this.matching(match).filter((c) => !c.revoked);
      for (const c of found) this.write({ ...c, revoked: true });
      return found.length;
    })();
  }

  async list(match: { type: Credential['type']; subject?: string }): Promise<Credential[]> {
    return this.matching(match);
  }
}
