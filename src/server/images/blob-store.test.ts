import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { BlobStore } from './blob-store.ts';
import { filesUnder } from './test-images.ts';

let dir: string;
let store: BlobStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crowd-blobs-'));
  store = new BlobStore(dir);
  await store.init();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

async function put(content: string) {
  const tmp = store.tempPath('test');
  writeFileSync(tmp, content);
  return store.put(tmp, sha(content));
}

test('a blob lands at blobs/sha256/<aa>/<hash>, read-only, and the temp file is gone', async () => {
  assert.deepEqual(await put('hello'), { created: true });
  const h = sha('hello');
  assert.deepEqual(filesUnder(dir), [`blobs/sha256/${h.slice(0, 2)}/${h}`]);
  assert.equal(readFileSync(store.path(h), 'utf8'), 'hello');
  assert.equal(statSync(store.path(h)).mode & 0o777, 0o444);
  assert.equal(await store.size(h), 5);
});

test('the same bytes stored twice are stored once', async () => {
  await put('same');
  assert.deepEqual(await put('same'), { created: false });
  assert.equal(filesUnder(dir).length, 1);
});

test('init clears temp files left by a crash and keeps blobs', async () => {
  await put('kept');
  writeFileSync(store.tempPath('crashed'), 'half');
  await new BlobStore(dir).init();
  assert.deepEqual(await store.list(), [sha('kept')]);
  assert.equal(filesUnder(dir).length, 1);
});

test('a name that is not a sha256 is refused, so no path leaves the store', () => {
  assert.throws(() => store.path('../../etc/shadow'), { code: 'invalid' });
  assert.throws(() => store.path('A'.repeat(64)), { code: 'invalid' });
});

test('sweep removes exactly the blobs outside the live set', async () => {
  await put('a');
  await put('b');
  await put('c');
  assert.deepEqual((await store.sweep([sha('b')])).sort(), [sha('a'), sha('c')].sort());
  assert.deepEqual(await store.list(), [sha('b')]);
});

test('opening a missing blob is not_found', async () => {
  await assert.rejects(store.open(sha('nothing')), { code: 'not_found' });
});
