import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkQuota, projectUsage } from './project-usage.ts';

const a = 'a'.repeat(64);
const b = 'b'.repeat(64);

test('each distinct blob counts once per project that uses it', () => {
  const usage = projectUsage([
    { project: 'web', status: { sha256: a, sizeBytes: 100 } },
    { project: 'web', status: { sha256: a, sizeBytes: 100 } },
    { project: 'web', status: { sha256: b, sizeBytes: 10 } },
    { project: 'db', status: { sha256: a, sizeBytes: 100 } },
    { project: 'db', status: {} },
    { project: 'empty' },
  ]);
  assert.deepEqual([...usage], [
    ['web', 110],
    ['db', 100],
  ]);
});

test('a write that would pass the quota is too large, one that reaches it exactly is fine', () => {
  assert.doesNotThrow(() => checkQuota({ project: 'web', usedBytes: 90, addBytes: 10, quotaBytes: 100 }));
  assert.throws(() => checkQuota({ project: 'web', usedBytes: 90, addBytes: 11, quotaBytes: 100 }), {
    code: 'too_large',
    message: 'Cannot store image in project "web": 101 bytes would exceed its quota of 100 bytes',
  });
});
