import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ApiError } from '../../api/errors.ts';
import { missingTools } from '../../base/require-tool.ts';
import { ExecRunner, type Runner } from '../../base/runner.ts';
import { ImageRepository } from './image-repository.ts';
import { filesUnder, makeTestImages, testDiskBytes, type TestImages } from './test-images.ts';

const skip = missingTools('qemu-img', 'xz', 'genisoimage', 'prlimit');

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function text(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('ImageRepository with real qemu-img', { skip }, () => {
  let root: string;
  let images: TestImages;
  let n = 0;
  const fresh = async () => {
    const repo = new ImageRepository({ dataDir: join(root, `data-${n++}`), runner: new ExecRunner() });
    await repo.init();
    return repo;
  };

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'crowd-images-'));
    images = makeTestImages(mkdtempSync(join(root, 'fixtures-')));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('every disk format is stored as the same qcow2 holding the same bytes, once', async () => {
    const repo = await fresh();
    const sources = { ...images.disks, ...images.compressed };
    const stored = [];
    for (const [name, path] of Object.entries(sources)) {
      const got = await repo.upload(createReadStream(path), { expectedSha256: sha256(path) });
      assert.equal(got.storedFormat, 'qcow2', name);
      assert.equal(got.format, name.split('.')[0], name);
      assert.equal(got.compression, { gz: 'gzip', xz: 'xz' }[name.split('.')[1] ?? ''], name);
      assert.equal(got.virtualSizeBytes, testDiskBytes, name);
      assert.equal(got.sourceSha256, sha256(path), name);
      stored.push(got);
    }
    assert.equal(new Set(stored.map((s) => s.sha256)).size, 1);
    assert.deepEqual(stored.map((s) => s.created), [true, ...Array(stored.length - 1).fill(false)]);
    const blob = repo.blobs.path(stored[0]!.sha256);
    assert.equal(sha256(blob), stored[0]!.sha256);
    execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', images.raw, blob]);
    assert.deepEqual(filesUnder(repo.blobs.dataDir), [`blobs/sha256/${stored[0]!.sha256.slice(0, 2)}/${stored[0]!.sha256}`]);
  });

  test('an ISO is kept byte for byte as install media', async () => {
    const repo = await fresh();
    const got = await repo.upload(createReadStream(images.iso));
    assert.equal(got.storedFormat, 'iso');
    assert.equal(got.format, 'iso');
    assert.equal(got.sha256, sha256(images.iso));
    assert.deepEqual(readFileSync(repo.blobs.path(got.sha256)), readFileSync(images.iso));
  });

  test('a wrong sha256 is refused and leaves nothing behind', async () => {
    const repo = await fresh();
    await assert.rejects(repo.upload(createReadStream(images.disks.qcow2), { expectedSha256: 'ab'.repeat(32) }), (e: ApiError) => {
      assert.equal(e.code, 'invalid');
      assert.match(e.message, /sha256 is ".*", expected "abab/);
      return true;
    });
    assert.deepEqual(filesUnder(repo.blobs.dataDir), []);
  });

  test('a body above the upload cap is refused and leaves nothing behind', async () => {
    const dataDir = join(root, `data-${n++}`);
    const repo = new ImageRepository({ dataDir, runner: new ExecRunner(), limits: { maxUploadBytes: 1024 * 1024 } });
    await repo.init();
    await assert.rejects(repo.upload(createReadStream(images.disks.raw)), { code: 'too_large' });
    assert.deepEqual(filesUnder(dataDir), []);
  });

  test('an interrupted upload resumes from the reported offset, across a restart, and its hash matches', async () => {
    const dataDir = join(root, `data-${n++}`);
    const first = new ImageRepository({ dataDir, runner: new ExecRunner() });
    await first.init();
    const bytes = readFileSync(images.disks.qcow2);
    const session = await first.beginUpload({ expectedSha256: sha256(images.disks.qcow2), expectedSize: bytes.length });
    const cut = async function* () {
      yield bytes.subarray(0, 300_000);
      yield bytes.subarray(300_000, 500_000);
      throw new Error('connection reset');
    };
    await assert.rejects(first.appendUpload(session.id, 0, Readable.from(cut())), /connection reset/);
    const seen = await first.uploadStatus(session.id);
    assert.ok([300_000, 500_000].includes(seen.offset), `offset ${seen.offset} is a chunk boundary`);

    const second = new ImageRepository({ dataDir, runner: new ExecRunner() });
    await second.init();
    await assert.rejects(second.appendUpload(session.id, 0, Readable.from([bytes])), (e: ApiError) => {
      assert.equal(e.code, 'conflict');
      assert.deepEqual(e.headers, { 'Upload-Offset': String(seen.offset) });
      return true;
    });
    const resumed = await second.appendUpload(session.id, seen.offset, Readable.from([bytes.subarray(seen.offset)]));
    assert.equal(resumed.offset, bytes.length);
    const got = await second.finishUpload(session.id);
    assert.equal(got.sourceSha256, sha256(images.disks.qcow2));
    assert.equal(got.format, 'qcow2');
    assert.deepEqual(filesUnder(join(dataDir, 'uploads')), []);
    await assert.rejects(second.uploadStatus(session.id), { code: 'not_found' });
  });

  test('finishing an upload whose bytes do not match its sha256 removes the session and stores nothing', async () => {
    const repo = await fresh();
    const session = await repo.beginUpload({ expectedSha256: 'cd'.repeat(32) });
    await repo.appendUpload(session.id, 0, createReadStream(images.disks.raw));
    await assert.rejects(repo.finishUpload(session.id), { code: 'invalid' });
    assert.deepEqual(filesUnder(repo.blobs.dataDir), []);
  });

  test('idle upload sessions expire and aborted ones are gone', async () => {
    const dataDir = join(root, `data-${n++}`);
    const repo = new ImageRepository({ dataDir, runner: new ExecRunner(), limits: { uploadSessionTtlMs: -1 } });
    await repo.init();
    const a = await repo.beginUpload();
    const b = await repo.beginUpload();
    await repo.abortUpload(a.id);
    assert.deepEqual(await repo.expireUploads(), [b.id]);
    assert.deepEqual(filesUnder(dataDir), []);
  });

  test('a stored blob is read whole or by byte range', async () => {
    const repo = await fresh();
    const got = await repo.upload(createReadStream(images.iso));
    const whole = await repo.open(got.sha256);
    assert.equal(whole.range, undefined);
    assert.deepEqual(await text(whole.stream), readFileSync(images.iso));
    const part = await repo.open(got.sha256, 'bytes=100-');
    assert.deepEqual(part.range, { start: 100, end: got.sizeBytes - 1 });
    assert.deepEqual(await text(part.stream), readFileSync(images.iso).subarray(100));
    await assert.rejects(repo.open('00'.repeat(32)), { code: 'not_found' });
  });

  test('sweep removes blobs no image points at and keeps the live ones', async () => {
    const repo = await fresh();
    const iso = await repo.upload(createReadStream(images.iso));
    const disk = await repo.upload(createReadStream(images.disks.raw));
    assert.deepEqual(await repo.sweep([disk.sha256]), [iso.sha256]);
    assert.equal(await repo.size(iso.sha256), undefined);
    assert.equal(await repo.size(disk.sha256), disk.sizeBytes);
  });

  test('conversions beyond the concurrency limit wait their turn', async () => {
    let running = 0;
    let most = 0;
    const exec = new ExecRunner();
    const counting: Runner = {
      async run(cmd) {
        const converting = cmd.argv.includes('convert');
        if (converting) most = Math.max(most, ++running);
        try {
          return await exec.run(cmd);
        } finally {
          if (converting) running--;
        }
      },
    };
    const repo = new ImageRepository({ dataDir: join(root, `data-${n++}`), runner: counting, limits: { maxConcurrentConversions: 1 } });
    await repo.init();
    const all = await Promise.all([images.disks.qcow2, images.disks.vdi, images.disks.vhdx].map((p) => repo.upload(createReadStream(p))));
    assert.equal(new Set(all.map((s) => s.sha256)).size, 1);
    assert.equal(most, 1);
  });

  describe('URL import', () => {
    let server: Server;
    let base: string;
    before(async () => {
      server = createServer((req, res) => {
        if (req.url === '/disk.qcow2.xz') return createReadStream(images.compressed['qcow2.xz']).pipe(res);
        if (req.url === '/moved') return res.writeHead(302, { location: '/disk.qcow2.xz' }).end();
        if (req.url === '/loop') return res.writeHead(302, { location: '/loop' }).end();
        if (req.url === '/to-file') return res.writeHead(302, { location: 'file:///etc/shadow' }).end();
        res.writeHead(404).end();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => server.close());

    test('an image is fetched over http through a redirect and checked like an upload', async () => {
      const repo = await fresh();
      const got = await repo.importUrl(`${base}/moved`, { expectedSha256: sha256(images.compressed['qcow2.xz']) });
      assert.equal(got.format, 'qcow2');
      assert.equal(got.compression, 'xz');
    });

    test('redirect loops, non-http schemes, error answers and link-local addresses are refused with nothing stored', async () => {
      const repo = await fresh();
      await assert.rejects(repo.importUrl(`${base}/loop`), /more than 3 redirects/);
      await assert.rejects(repo.importUrl(`${base}/to-file`), /scheme "file" is not http or https/);
      await assert.rejects(repo.importUrl(`${base}/missing`), /server answered HTTP 404/);
      await assert.rejects(repo.importUrl('ftp://example.invalid/x.img'), { code: 'invalid' });
      await assert.rejects(repo.importUrl('http://169.254.169.254/latest/meta-data/'), { code: 'forbidden' });
      await assert.rejects(repo.importUrl(`${base}/disk.qcow2.xz`, { expectedSha256: 'ef'.repeat(32) }), { code: 'invalid' });
      assert.deepEqual(filesUnder(repo.blobs.dataDir), []);
    });
  });
});
