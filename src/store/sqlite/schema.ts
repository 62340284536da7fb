/**
 * The SQLite layout. `objects` holds the live documents; `history` every
 * version (and the watch's source); `fields` indexes labels and scalar leaves
 * for selectors and field filters; `refs` records who references whom.
 */
export const schemaVersion = 1;

export const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  project TEXT NOT NULL,
  name TEXT NOT NULL,
  revision INTEGER NOT NULL,
  doc TEXT NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS objects_by_name ON objects (kind, project, name);
CREATE TABLE IF NOT EXISTS fields (
  kind TEXT NOT NULL,
  path TEXT NOT NULL,
  v TEXT NOT NULL,
  id TEXT NOT NULL,
  PRIMARY KEY (kind, path, v, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fields_by_id ON fields (id);
CREATE TABLE IF NOT EXISTS refs (
  to_kind TEXT NOT NULL,
  to_project TEXT NOT NULL,
  to_name TEXT NOT NULL,
  from_id TEXT NOT NULL,
  PRIMARY KEY (to_kind, to_project, to_name, from_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refs_by_from ON refs (from_id);
CREATE TABLE IF NOT EXISTS history (
  revision INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  kind TEXT NOT NULL,
  project TEXT NOT NULL,
  name TEXT NOT NULL,
  op TEXT NOT NULL,
  author TEXT NOT NULL,
  reason TEXT,
  time TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_id ON history (id, revision);
CREATE INDEX IF NOT EXISTS history_by_name ON history (kind, project, name, revision);
CREATE TABLE IF NOT EXISTS credentials (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS credentials_by_subject ON credentials (type, subject);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0), ('compacted', 0), ('schema', ${schemaVersion});
`;
