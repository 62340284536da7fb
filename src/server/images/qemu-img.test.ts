import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { missingTools } from '../../base/require-tool.ts';
import { ExecRunner, FakeRunner } from '../../base/runner.ts';
import { defaultImageLimits } from './image-limits.ts';
import { QemuImg } from './qemu-img.ts';

const limits = { toolMemoryBytes: 1 << 30, inspectTimeoutMs: 60_000, convertTimeoutMs: 600_000 };

test('every qemu-img run names the format, opens shared and runs under prlimit', async () => {
  const runner = new FakeRunner().on('prlimit --as=1073741824 --cpu=60 -- qemu-img info', { stdout: '{"format":"raw"}' });
  const q = new QemuImg(runner, limits);
  assert.deepEqual(await q.info('/d/tmp/x', 'raw'), { format: 'raw' });
  await q.check('/d/tmp/x', 'vdi');
  await q.convert('/d/tmp/x', 'vdi', '/d/tmp/y', 5000);
  assert.deepEqual(runner.lines(), [
    'prlimit --as=1073741824 --cpu=60 -- qemu-img info -U --output=json -f raw /d/tmp/x',
    'prlimit --as=1073741824 --cpu=60 -- qemu-img check -U --output=json -f vdi /d/tmp/x',
    'prlimit --as=1073741824 --fsize=5000 -- qemu-img convert -U -f vdi -O qcow2 /d/tmp/x /d/tmp/y',
  ]);
  assert.deepEqual(
    runner.calls.map((c) => [c.timeoutMs, c.env]),
    [60_000, 60_000, 600_000].map((t) => [t, { MALLOC_ARENA_MAX: '2' }]),
  );
});

test('qemu-img check accepts leaked clusters and unsupported checks but not corruption', async () => {
  const q = (code: number) => new QemuImg(new FakeRunner().on('prlimit', { code }), limits);
  await q(3).check('/x', 'qcow2');
  await q(63).check('/x', 'vhdx');
  await assert.rejects(q(2).check('/x', 'qcow2'), /found corruption/);
  await assert.rejects(q(1).check('/x', 'qcow2'), { code: 'invalid' });
});

test('a tool failure message never shows server paths', async () => {
  const runner = new FakeRunner().on('prlimit', { code: 1, stderr: "qemu-img: Could not open '/srv/crowd/tmp/01J.upload': Invalid argument /srv/other\n" });
  await assert.rejects(new QemuImg(runner, limits).info('/srv/crowd/tmp/01J.upload', 'qcow2'), (e: Error) => {
    assert.equal(e.message, "Cannot read image: qemu-img: Could not open 'image': Invalid argument <path>");
    return true;
  });
});

describe('limits on a real qemu-img convert', { skip: missingTools('qemu-img', 'prlimit') }, () => {
  let dir: string;
  let src: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'crowd-qemu-img-'));
    src = join(dir, 'disk.raw');
    writeFileSync(src, randomBytes(2 * 1024 * 1024));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('an output larger than the cap stops the conversion as too large', async () => {
    const q = new QemuImg(new ExecRunner(), defaultImageLimits);
    await assert.rejects(q.convert(src, 'raw', join(dir, 'capped.qcow2'), 256 * 1024), { code: 'too_large' });
  });

  test('too little memory fails the conversion instead of letting it grow', async () => {
    const q = new QemuImg(new ExecRunner(), { ...defaultImageLimits, toolMemoryBytes: 8 * 1024 * 1024 });
    await assert.rejects(q.convert(src, 'raw', join(dir, 'small-memory.qcow2'), 1 << 30), { code: 'invalid' });
  });

  test('a conversion past its time limit is killed', async () => {
    const q = new QemuImg(new ExecRunner(), { ...defaultImageLimits, convertTimeoutMs: 1 });
    await assert.rejects(q.convert(src, 'raw', join(dir, 'late.qcow2'), 1 << 30), /exceeded its time or memory limit/);
  });

  test('within its limits the conversion gives a qcow2 with the same content', async () => {
    const out = join(dir, 'ok.qcow2');
    await new QemuImg(new ExecRunner(), defaultImageLimits).convert(src, 'raw', out, 4 * 1024 * 1024);
    assert.ok(existsSync(out));
    execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', src, out]);
  });
});
