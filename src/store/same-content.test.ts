import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sameJson } from './same-content.ts';

test('values that encode to the same JSON up to key order are the same', () => {
  assert.ok(sameJson({ a: 1, b: { c: [1, { d: 'x', e: null }] } }, { b: { c: [1, { e: null, d: 'x' }] }, a: 1 }));
  assert.ok(sameJson({ a: 1, gone: undefined }, { a: 1 }), 'an undefined key is absent, as in JSON');
  assert.ok(sameJson([undefined], [null]), 'an undefined array item is null, as in JSON');
  assert.ok(sameJson({}, {}));
});

test('any difference in a value, a key, an array order or a type counts', () => {
  assert.ok(!sameJson({ a: 1 }, { a: 2 }));
  assert.ok(!sameJson({ a: 1 }, { a: 1, b: 2 }));
  assert.ok(!sameJson({ a: 1, b: 2 }, { a: 1 }));
  assert.ok(!sameJson({ a: 1, b: undefined }, { a: 1, c: 2 }));
  assert.ok(!sameJson([1, 2], [2, 1]));
  assert.ok(!sameJson({ a: [1] }, { a: { 0: 1 } }));
  assert.ok(!sameJson({ a: '1' }, { a: 1 }));
  assert.ok(!sameJson({ a: null }, { a: {} }));
  assert.ok(!sameJson({ n: { deep: { x: 'node-a' } } }, { n: { deep: { x: 'node-b' } } }));
});
