import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isScope, scopeCovers, scopesAllow, scopesBeyond } from './scopes.ts';

test('well-formed scopes are accepted and others refused', () => {
  for (const s of ['*', 'vm:read', 'vm:write', 'image:write', '*:read', 'machine-type:*']) assert.ok(isScope(s), s);
  for (const s of ['', 'vm', 'vm:delete', ':read', 'VM:read', 'vm:read,vm:write', '**']) assert.ok(!isScope(s), s);
});

test('a write scope covers reading, never the other way round', () => {
  assert.ok(scopeCovers('vm:write', 'vm:read'));
  assert.ok(!scopeCovers('vm:read', 'vm:write'));
  assert.ok(scopeCovers('*', 'image:write'));
  assert.ok(scopeCovers('*:read', 'node:read'));
  assert.ok(!scopeCovers('*:read', 'node:write'));
  assert.ok(scopeCovers('vm:*', 'vm:write'));
  assert.ok(!scopeCovers('vm:*', 'image:read'));
  assert.ok(!scopeCovers('vm:write', '*'));
  assert.ok(!scopeCovers('vm:write', '*:read'));
});

test('scopes allow actions and report what goes beyond a parent', () => {
  assert.ok(scopesAllow(['vm:write', 'image:read'], 'image', 'read'));
  assert.ok(!scopesAllow([], 'vm', 'read'));
  assert.deepEqual(scopesBeyond(['vm:write'], ['vm:read', 'vm:write', 'image:read', '*']), ['image:read', '*']);
});
