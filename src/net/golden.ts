import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';

/** Compares generated text with a checked-in file; `UPDATE_GOLDEN=1` rewrites the file instead. */
export function assertGolden(actual: string, path: URL): void {
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, 'utf8'));
}
