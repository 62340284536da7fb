import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, test } from 'node:test';
import { FakeClock } from '../../base/clock.ts';
import { filesUnder } from './test-images.ts';
import { UploadSessions } from './upload-sessions.ts';

let dir: string;
let clock: FakeClock;
let sessions: UploadSessions;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crowd-uploads-'));
  clock = new FakeClock();
  sessions = new UploadSessions(dir, { maxBytes: 1000, clock });
  await sessions.init();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const body = (s: string) => Readable.from([Buffer.from(s)]);
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('chunks appended in order complete into the whole file with its sha256', async () => {
  const s = await sessions.create({ expectedSize: 11, expectedSha256: sha('hello world'), project: 'web' });
  assert.equal((await sessions.append(s.id, 0, body('hello '))).offset, 6);
  assert.equal((await sessions.append(s.id, 6, body('world'))).offset, 11);
  const dest = join(dir, 'out');
  assert.deepEqual(await sessions.complete(s.id, dest), { sha256: sha('hello world'), sizeBytes: 11 });
  assert.equal(readFileSync(dest, 'utf8'), 'hello world');
  assert.deepEqual(filesUnder(join(dir, 'uploads')), []);
});

test('a session survives a restart and its hash is rebuilt from the partial file', async () => {
  const s = await sessions.create();
  await sessions.append(s.id, 0, body('hello '));
  const restarted = new UploadSessions(dir, { maxBytes: 1000, clock });
  const again = await restarted.get(s.id);
  assert.equal(again.offset, 6);
  await restarted.append(s.id, 6, body('world'));
  assert.equal((await restarted.complete(s.id, join(dir, 'out'))).sha256, sha('hello world'));
});

test('an append at the wrong offset is a conflict naming the current offset', async () => {
  const s = await sessions.create();
  await sessions.append(s.id, 0, body('abc'));
  await assert.rejects(sessions.append(s.id, 0, body('abc')), {
    code: 'conflict',
    message: `Cannot append to upload "${s.id}": offset "0" is not the current offset "3"`,
    headers: { 'Upload-Offset': '3' },
  });
});

test('a second append while one is running is a conflict', async () => {
  const s = await sessions.create();
  const slow = new PassThrough();
  const first = sessions.append(s.id, 0, slow);
  slow.write('ab');
  await assert.rejects(sessions.append(s.id, 0, body('x')), /another request is using it/);
  slow.end('c');
  assert.equal((await first).offset, 3);
});

test('bytes beyond the expected size or the cap are refused and not stored', async () => {
  const s = await sessions.create({ expectedSize: 4 });
  await assert.rejects(sessions.append(s.id, 0, body('too long')), { code: 'too_large' });
  assert.equal((await sessions.get(s.id)).offset, 0);
  await assert.rejects(sessions.create({ expectedSize: 1001 }), { code: 'too_large' });
  await assert.rejects(sessions.create({ expectedSha256: 'nope' }), { code: 'invalid' });
});

test('a size or hash mismatch at completion removes the session', async () => {
  const s = await sessions.create({ expectedSize: 5 });
  await sessions.append(s.id, 0, body('abc'));
  await assert.rejects(sessions.complete(s.id, join(dir, 'out')), /received "3" bytes, expected "5"/);
  await assert.rejects(sessions.get(s.id), { code: 'not_found' });
  assert.deepEqual(filesUnder(dir), []);
});

test('unknown or malformed ids are not found, never a path', async () => {
  await assert.rejects(sessions.get('../../etc'), { code: 'not_found' });
  await assert.rejects(sessions.get('upl_01JD0000000000000000000000'), { code: 'not_found' });
  await assert.rejects(sessions.complete('..', join(dir, 'out')), { code: 'not_found' });
  await assert.rejects(sessions.abort('../uploads'), { code: 'not_found' });
  await assert.rejects(sessions.append('..', 0, body('x')), { code: 'not_found' });
  assert.deepEqual(filesUnder(dir), []);
  assert.ok((await sessions.create()).id);
});

test('sessions idle past the TTL expire; recently used ones stay', async () => {
  const old = await sessions.create();
  clock.advance(60_000);
  const fresh = await sessions.create();
  clock.advance(30_000);
  assert.deepEqual(await sessions.expire(45_000), [old.id]);
  assert.equal((await sessions.get(fresh.id)).offset, 0);
});
