import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, test } from 'node:test';
import { HashingWriter } from './hashing-writer.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'crowd-writer-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(50_000, i));
const whole = Buffer.concat(chunks);

test('the file and the hash get every byte, in order', async () => {
  const fh = await open(join(dir, 'f'), 'w');
  const w = new HashingWriter(fh, { maxBytes: whole.length });
  await pipeline(Readable.from(chunks), w);
  await fh.close();
  assert.deepEqual(readFileSync(join(dir, 'f')), whole);
  assert.equal(w.size, whole.length);
  assert.equal(w.hash.digest('hex'), createHash('sha256').update(whole).digest('hex'));
});

test('one byte over the cap fails the stream before it is written', async () => {
  const fh = await open(join(dir, 'f'), 'w');
  const w = new HashingWriter(fh, { maxBytes: whole.length - 1 });
  await assert.rejects(pipeline(Readable.from(chunks), w), { code: 'too_large' });
  await w.settled();
  await fh.close();
  assert.ok(w.size < whole.length);
  assert.equal(readFileSync(join(dir, 'f')).length, w.size);
});

test('a failed write leaves size at what reached the file and says the hash no longer matches', async () => {
  const real = await open(join(dir, 'f'), 'w');
  let calls = 0;
  const failing = {
    writev: (buffers: Buffer[], position: number) => {
      if (++calls === 2) return Promise.reject(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
      return real.writev(buffers, position);
    },
    sync: () => real.sync(),
  } as unknown as FileHandle;
  const w = new HashingWriter(failing, { maxBytes: Infinity });
  await assert.rejects(pipeline(Readable.from(chunks), w), /disk full/);
  await w.settled();
  await real.close();
  assert.equal(w.hashMatchesFile, false);
  assert.equal(readFileSync(join(dir, 'f')).length, w.size);
});

/** 40 MiB in 64 KiB chunks, as a socket delivers them: many 4 MiB write batches. */
const big = Array.from({ length: 640 }, (_, i) => Buffer.alloc(64 * 1024, i));

test('a body of many write batches arrives whole and hashed, and is synced before the stream ends', async () => {
  const real = await open(join(dir, 'f'), 'w');
  const calls: string[] = [];
  const fh = {
    writev: (buffers: Buffer[], position: number) => (calls.push('writev'), real.writev(buffers, position)),
    sync: () => (calls.push('sync'), real.sync()),
  } as unknown as FileHandle;
  const w = new HashingWriter(fh, { maxBytes: Infinity });
  await pipeline(Readable.from(big), w);
  await real.close();
  const all = Buffer.concat(big);
  assert.deepEqual(readFileSync(join(dir, 'f')), all);
  assert.equal(w.hash.digest('hex'), createHash('sha256').update(all).digest('hex'));
  assert.ok(calls.filter((c) => c === 'writev').length < big.length, 'chunks are batched');
  assert.equal(calls.at(-1), 'sync');
});

test('large batches still stop at the cap: one byte over fails the stream and nothing past the cap is written', async () => {
  const fh = await open(join(dir, 'f'), 'w');
  const cap = 40 * 1024 * 1024 - 1;
  const w = new HashingWriter(fh, { maxBytes: cap });
  await assert.rejects(pipeline(Readable.from(big), w), { code: 'too_large' });
  await w.settled();
  await fh.close();
  assert.ok(w.size <= cap);
  assert.equal(readFileSync(join(dir, 'f')).length, w.size);
});
