import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { missingTools } from '../base/require-tool.ts';
import { ExecRunner } from '../base/runner.ts';
import { ImageRepository } from '../server/images/image-repository.ts';
import { makeTestImages, type TestImages } from '../server/images/test-images.ts';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';
import type { CliIo } from './cli-io.ts';
import { runCli } from './main.ts';

const skip = missingTools('qemu-img', 'xz', 'genisoimage', 'prlimit');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Runs `crowd …` in-process with captured output and, optionally, a fetch standing in for the network. */
async function crowd(argv: string[], env: Record<string, string>, fetchImpl?: typeof fetch): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin: Readable.from([]),
    env,
    ...(fetchImpl ? { fetch: fetchImpl } : {}),
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

/** A network that delivers the first `bytes` of the first append to the server, then breaks the connection. */
function breaksAfter(bytes: number): typeof fetch {
  let broken = false;
  return async (input, init) => {
    if (init?.method !== 'PATCH' || broken) return fetch(input, init);
    broken = true;
    const reader = (init.body as ReadableStream<Uint8Array>).getReader();
    const parts: Buffer[] = [];
    let n = 0;
    while (n < bytes) {
      const { value, done } = await reader.read();
      if (done) break;
      parts.push(Buffer.from(value));
      n += value.length;
    }
    await reader.cancel();
    const sent = Buffer.concat(parts).subarray(0, bytes);
    await fetch(input, { method: 'PATCH', headers: init.headers, body: sent });
    throw new TypeError('fetch failed', { cause: new Error('connection reset') });
  };
}

describe('crowd image upload, import and download', { skip }, () => {
  let root: string;
  let images: TestImages;
  let t: TestApp;
  let env: Record<string, string>;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'crowd-cli-images-'));
    images = makeTestImages(mkdtempSync(join(root, 'fixtures-')));
    const repo = new ImageRepository({ dataDir: join(root, 'data'), runner: new ExecRunner(), allowAddress: () => true });
    t = await buildTestApp({ images: { repo } });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    env = { CROWD_URL: url, CROWD_TOKEN: testToken, CROWD_CONFIG: join(root, 'config', 'config.yaml') };
  });
  after(async () => {
    await t.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('upload creates the image, reports progress as lines off a terminal, and download saves the stored blob', async () => {
    const file = images.disks.vmdk;
    const up = await crowd(['image', 'upload', file, '--name', 'disk', '--sha256', sha256(readFileSync(file))], env);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /^image "disk" ready: qcow2, virtual size 2097152 bytes, sha256 [0-9a-f]{64}\n$/);
    assert.match(up.stderr, /Uploading disk: .* MiB \(100%\)/);
    const out = join(root, 'disk.qcow2');
    const down = await crowd(['image', 'download', 'disk', '-o', out], env);
    assert.equal(down.code, 0, down.stderr);
    const stored = (await t.store.get({ kind: 'image', idOrName: 'disk' })).status as { sha256: string };
    assert.equal(sha256(readFileSync(out)), stored.sha256);
  });

  test('an upload cut off midway continues on the next run from where the server stopped', async () => {
    const file = images.disks.qcow2;
    const bytes = readFileSync(file);
    const first = await crowd(['image', 'upload', file, '--name', 'resumed', '--retries', '0'], env, breaksAfter(100_000));
    assert.equal(first.code, 1);
    assert.match(first.stderr, /Cannot reach server/);
    const second = await crowd(['image', 'upload', file, '--name', 'resumed'], env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, /Resuming the upload of ".*" at byte 100000/);
    const img = await t.store.get({ kind: 'image', idOrName: 'resumed' });
    assert.equal((img.status as { sourceSha256: string }).sourceSha256, sha256(bytes));
  });

  test('a broken connection within one run is retried from the offset the server reports', async () => {
    const file = images.compressed['qcow2.gz'];
    const r = await crowd(['image', 'upload', file, '--name', 'retried'], env, breaksAfter(50_000));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /image "retried" ready/);
  });

  test('a download continues an earlier partial file with a Range request', async () => {
    const out = join(root, 'partial.qcow2');
    const full = join(root, 'full.qcow2');
    assert.equal((await crowd(['image', 'download', 'disk', '-o', full], env)).code, 0);
    writeFileSync(`${out}.partial`, readFileSync(full).subarray(0, 1000));
    const r = await crowd(['image', 'download', 'disk', '-o', out], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Resuming the download of disk at byte 1000/);
    assert.deepEqual(readFileSync(out), readFileSync(full));
    assert.equal(existsSync(`${out}.partial`), false);
  });

  test('import makes the server fetch a URL and waits until the image is ready; a bad upload is a clear error', async () => {
    const served: Server = createServer((_req, res) => res.end(readFileSync(images.disks.vhdx)));
    await new Promise<void>((r) => served.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(served.address() as AddressInfo).port}/disk.vhdx`;
      const r = await crowd(['image', 'import', url, '--name', 'imported'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /image "imported" ready: qcow2/);
    } finally {
      served.close();
    }
    const bad = await crowd(['image', 'upload', images.raw, '--name', 'wrong', '--sha256', 'a'.repeat(64)], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /sha256/);
    const missing = await crowd(['image', 'upload', join(root, 'nope.img'), '--name', 'x'], env);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Cannot upload ".*nope.img": no such file/);
  });
});
