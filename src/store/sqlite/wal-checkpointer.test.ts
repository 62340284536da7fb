import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { WalCheckpointer } from './wal-checkpointer.ts';

test('a checkpoint in the worker copies every committed WAL frame into the database file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-wal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'x.db');
  const db = new Database(path);
  t.after(() => db.close());
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (v TEXT)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < 2000; i++) insert.run('x'.repeat(200));
  })();
  const failures: Error[] = [];
  const cp = new WalCheckpointer(path, (e) => failures.push(e));
  // The database file alone, without its WAL, holds only what a checkpoint copied into it.
  const rowsInFile = () => {
    const copy = join(dir, `copy-${Math.random()}.db`);
    copyFileSync(path, copy);
    const c = new Database(copy);
    try {
      return c.prepare<[], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE name = 't'").get()!.n && c.prepare<[], { n: number }>('SELECT count(*) AS n FROM t').get()!.n;
    } finally {
      c.close();
    }
  };
  assert.equal(rowsInFile(), 0);
  cp.committed();
  await cp.idle();
  await cp.close();
  assert.deepEqual(failures, []);
  assert.equal(rowsInFile(), 2000);
});

test('a worker that cannot open the database reports the failure once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-wal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const failed = new Promise<Error>((resolve) => {
    const cp = new WalCheckpointer(join(dir, 'missing', 'x.db'), resolve);
    t.after(() => cp.close());
  });
  assert.match((await failed).message, /directory|unable to open|cannot open/i);
});
