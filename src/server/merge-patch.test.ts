import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergePatch } from './merge-patch.ts';

test('a merge patch merges objects, removes keys set to null and replaces arrays whole', () => {
  const target = { a: 1, b: { c: 2, d: 3 }, e: [1, 2] };
  const out = mergePatch(target, { b: { c: null, x: 'y' }, e: [3], f: true });
  assert.deepEqual(out, { a: 1, b: { d: 3, x: 'y' }, e: [3], f: true });
  assert.deepEqual(target, { a: 1, b: { c: 2, d: 3 }, e: [1, 2] });
});

test('a merge patch that is not an object replaces the target', () => {
  assert.deepEqual(mergePatch({ a: 1 }, [1]), [1]);
  assert.equal(mergePatch({ a: 1 }, 'x'), 'x');
  assert.deepEqual(mergePatch('x', { a: { b: null } }), { a: {} });
});
