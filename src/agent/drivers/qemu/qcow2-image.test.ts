import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { missingTools } from '../../../base/require-tool.ts';
import { createQcow2, qcow2Image } from './qcow2-image.ts';

const skip = missingTools('qemu-img', 'qemu-io');
const GiB = 1024n ** 3n;

function qemuImg(...args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8' });
}

async function scratch(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'crowd-qcow2-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('an overlay written without qemu-img passes qemu-img check and reads through to its backing file', { skip }, async (t) => {
  const dir = await scratch(t);
  const base = join(dir, 'base.raw');
  await writeFile(base, Buffer.alloc(1024 * 1024, 0x5a));
  const overlay = join(dir, 'boot.qcow2');
  await createQcow2(overlay, 10n * GiB, { path: base, format: 'raw' });
  qemuImg('check', '-q', overlay);
  const info = JSON.parse(qemuImg('info', '--output=json', overlay)) as Record<string, unknown>;
  assert.equal(info['virtual-size'], 10 * 1024 ** 3);
  assert.equal(info['cluster-size'], 65536);
  assert.equal(info['backing-filename'], base);
  assert.equal(info['backing-filename-format'], 'raw');
  const read = execFileSync('qemu-io', ['-r', '-f', 'qcow2', '-c', 'read -P 0x5a 0 1M', '-c', 'read -P 0 1M 64k', overlay], { encoding: 'utf8' });
  assert.doesNotMatch(read, /Pattern verification failed/, 'the overlay shows the backing data, then zeros');
  assert.match(read, /read 1048576\/1048576 bytes/);
  assert.equal((await stat(overlay)).mode & 0o777, 0o600);
});

test('a plain qcow2 written without qemu-img takes writes beyond the first L2 table and stays consistent', { skip }, async (t) => {
  const dir = await scratch(t);
  const disk = join(dir, 'data.qcow2');
  await createQcow2(disk, 3n * GiB);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 64k', '-c', 'write -P 0xa5 2G 128k', disk], { stdio: 'ignore' });
  qemuImg('check', '-q', disk);
  const read = execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0xa5 2G 128k', '-c', 'read -P 0 1G 64k', disk], { encoding: 'utf8' });
  assert.doesNotMatch(read, /Pattern verification failed/);
});

test('qcow2 images are refused for sizes qemu would not take and never written over an existing file', async (t) => {
  for (const bytes of [0n, -512n, 1000n, 5n * 1024n * GiB]) assert.throws(() => qcow2Image(bytes), RangeError, `size ${bytes}`);
  assert.throws(() => qcow2Image(GiB, { path: `/${'x'.repeat(2000)}`, format: 'raw' }), /too long/);
  const dir = await scratch(t);
  const existing = join(dir, 'disk.qcow2');
  await writeFile(existing, 'keep me');
  await assert.rejects(createQcow2(existing, GiB), { code: 'EEXIST' });
  assert.equal(await readFile(existing, 'utf8'), 'keep me');
  await assert.rejects(createQcow2(join(dir, 'o.qcow2'), GiB, { path: join(dir, 'missing.raw'), format: 'raw' }), { code: 'ENOENT' });
});
