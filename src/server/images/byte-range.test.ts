import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contentRange, parseByteRange } from './byte-range.ts';

test('no Range header means the whole blob', () => {
  assert.equal(parseByteRange(undefined, 100), undefined);
  assert.equal(parseByteRange('', 100), undefined);
});

test('start-end, open-ended and suffix ranges are understood and clipped to the blob', () => {
  assert.deepEqual(parseByteRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseByteRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseByteRange('bytes=90-500', 100), { start: 90, end: 99 });
  assert.deepEqual(parseByteRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseByteRange('bytes=-500', 100), { start: 0, end: 99 });
  assert.equal(contentRange({ start: 90, end: 99 }, 100), 'bytes 90-99/100');
});

test('unsatisfiable, malformed and multiple ranges are invalid', () => {
  for (const h of ['bytes=100-', 'bytes=5-2', 'bytes=-0', 'bytes=-', 'items=0-1', 'bytes=0-1,5-6', 'bytes=a-b']) {
    assert.throws(() => parseByteRange(h, 100), { code: 'invalid' }, h);
  }
});
