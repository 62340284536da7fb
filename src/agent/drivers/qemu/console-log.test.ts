import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readConsoleLog, rotateConsoleLog } from './console-log.ts';

test('rotation bounds the log while an O_APPEND writer (QEMU) keeps writing, and reads join both files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'console-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const log = join(dir, 'console.log');
  const fd = openSync(log, 'a');
  t.after(() => closeSync(fd));
  writeSync(fd, 'a'.repeat(60));
  assert.equal(await rotateConsoleLog(log, 100), false);
  writeSync(fd, 'b'.repeat(60));
  assert.equal(await rotateConsoleLog(log, 100), true);
  writeSync(fd, 'c'.repeat(10));
  // The writer's next bytes land at the start of the truncated file, not after a hole.
  assert.equal(readFileSync(log, 'utf8'), 'c'.repeat(10));
  assert.equal(await readConsoleLog(log, 200), 'a'.repeat(60) + 'b'.repeat(60) + 'c'.repeat(10));
  assert.equal(await readConsoleLog(log, 25), 'b'.repeat(15) + 'c'.repeat(10));
});

test('a VM without console output yet reads as empty', async () => {
  assert.equal(await readConsoleLog(join(tmpdir(), `no-console-${process.pid}.log`), 100), '');
});
