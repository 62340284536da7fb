import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AnyObject } from '../../api/object.ts';
import { missingTools } from '../../base/require-tool.ts';
import { ExecRunner } from '../../base/runner.ts';
import { ImageRepository } from '../images/image-repository.ts';
import { filesUnder, makeTestImages, testDiskBytes, type TestImages } from '../images/test-images.ts';
import { buildTestApp, type TestApp } from '../test-app.ts';

const skip = missingTools('qemu-img', 'xz', 'genisoimage', 'prlimit');
const by = { author: 'test' };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('image routes with real qemu-img', { skip }, () => {
  let root: string;
  let fixtures: TestImages;
  let t: TestApp;
  let dataDir: string;
  let swept: ((sha: string) => void) | undefined;
  const quota = 64 * 1024 * 1024;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'crowd-image-routes-'));
    fixtures = makeTestImages(mkdtempSync(join(root, 'fixtures-')));
    dataDir = join(root, 'data');
    const repo = new ImageRepository({ dataDir, runner: new ExecRunner(), allowAddress: () => true });
    t = await buildTestApp({ nodes: true, images: { repo, quotaBytesPerProject: quota, onSweep: (s) => swept?.(s) } });
    await t.seed();
    await t.store.create({ kind: 'project', name: 'small', spec: {} }, by);
  });
  after(async () => {
    await t.close();
    rmSync(root, { recursive: true, force: true });
  });

  const image = (name: string, spec: Record<string, unknown> = {}, project = 'default') => t.store.create({ kind: 'image', project, name, spec }, by);
  const call = (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE' | 'HEAD', url: string, opts: { payload?: unknown; headers?: Record<string, string> } = {}) =>
    t.app.inject({ method, url, headers: { ...t.auth, ...opts.headers }, ...(opts.payload !== undefined ? { payload: opts.payload as string } : {}) });
  const chunk = (url: string, offset: number, bytes: Buffer) =>
    call('PATCH', url, { payload: bytes, headers: { 'content-type': 'application/octet-stream', 'upload-offset': String(offset) } });

  /** Uploads a file in one chunk and finishes; answers the finish response. */
  const upload = async (name: string, file: string, project = 'default') => {
    const begin = await call('POST', `/v1/images/${name}/uploads?project=${project}`, { payload: {} });
    assert.equal(begin.statusCode, 201, begin.body);
    const url = `/v1/images/${name}/uploads/${begin.json<{ id: string }>().id}?project=${project}`;
    const put = await chunk(url, 0, readFileSync(file));
    assert.equal(put.statusCode, 200, put.body);
    return call('POST', url.replace('?', '/finish?'));
  };

  test('every format uploads through the API and downloads as the stored blob, whole or by range', async () => {
    const all = { ...fixtures.disks, iso: fixtures.iso, ...fixtures.compressed };
    for (const [kind, file] of Object.entries(all)) {
      const name = `fmt-${kind.replace('.', '-')}`;
      await image(name);
      const res = await upload(name, file);
      assert.equal(res.statusCode, 200, `${kind}: ${res.body}`);
      const status = res.json<AnyObject>().status as Record<string, unknown>;
      assert.equal(status.phase, 'ready');
      assert.equal(status.format, kind === 'iso' ? 'iso' : 'qcow2', kind);
      assert.equal(status.sourceSha256, sha256(readFileSync(file)));
      assert.equal(status.sourceFormat, kind === 'iso' ? 'iso' : kind.split('.')[0]);
      if (kind.endsWith('gz')) assert.equal(status.compression, 'gzip');
      if (kind !== 'iso') assert.equal(status.virtualSizeBytes, testDiskBytes);
      const whole = await call('GET', `/v1/images/${name}/content`);
      assert.equal(whole.statusCode, 200);
      assert.equal(sha256(whole.rawPayload), status.sha256);
      assert.equal(whole.headers.etag, `"${status.sha256}"`);
      const part = await call('GET', `/v1/images/${name}/content`, { headers: { range: 'bytes=10-19' } });
      assert.equal(part.statusCode, 206);
      assert.equal(part.headers['content-range'], `bytes 10-19/${whole.rawPayload.length}`);
      assert.deepEqual(part.rawPayload, whole.rawPayload.subarray(10, 20));
    }
    const ready = await call('POST', '/v1/images/fmt-raw/uploads', { payload: {} });
    assert.equal(ready.statusCode, 409, 'an image that holds content is immutable');
  });

  test('an interrupted upload resumes at the offset the server reports, and a wrong offset names the right one', async () => {
    await image('resumed');
    const bytes = readFileSync(fixtures.disks.qcow2);
    const begin = await call('POST', '/v1/images/resumed/uploads', { payload: { size: bytes.length, sha256: sha256(bytes) } });
    const url = `/v1/images/resumed/uploads/${begin.json<{ id: string }>().id}`;
    const half = Math.floor(bytes.length / 2);
    assert.equal((await chunk(url, 0, bytes.subarray(0, half))).statusCode, 200);
    const head = await call('HEAD', url);
    assert.equal(head.headers['upload-offset'], String(half));
    const wrong = await chunk(url, 0, bytes.subarray(half));
    assert.equal(wrong.statusCode, 409);
    assert.equal(wrong.headers['upload-offset'], String(half));
    const noOffset = await call('PATCH', url, { payload: bytes.subarray(half), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(noOffset.statusCode, 400);
    const json = await call('PATCH', url, { payload: { a: 1 }, headers: { 'upload-offset': String(half) } });
    assert.equal(json.statusCode, 400);
    assert.match(json.body, /application\/octet-stream/);
    assert.equal((await chunk(url, half, bytes.subarray(half))).statusCode, 200);
    const done = await call('POST', `${url}/finish`);
    assert.equal(done.statusCode, 200, done.body);
    assert.equal((done.json<AnyObject>().status as { phase: string }).phase, 'ready');
    assert.equal((await call('GET', url)).statusCode, 404, 'the session is gone once finished');
  });

  test('a hostile image is refused with a clear error, the image is marked failed and nothing stays on disk', async () => {
    await image('hostile');
    const before = filesUnder(join(dataDir, 'blobs'));
    const bad = join(root, 'backing.qcow2');
    execFileSync('qemu-img', ['create', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/shadow', bad, '1M'], { stdio: 'ignore' });
    const res = await upload('hostile', bad);
    assert.equal(res.statusCode, 400, res.body);
    assert.match(res.json<{ error: { message: string } }>().error.message, /backing/);
    const img = await t.store.get({ kind: 'image', idOrName: 'hostile' });
    assert.equal((img.status as { phase: string }).phase, 'failed');
    assert.deepEqual(filesUnder(join(dataDir, 'blobs')), before);
    assert.deepEqual(filesUnder(join(dataDir, 'uploads')), []);
    assert.deepEqual(filesUnder(join(dataDir, 'tmp')), []);
  });

  test('a wrong sha256 from the image spec is refused at finish', async () => {
    await image('wrong-hash', { sha256: 'f'.repeat(64) });
    const res = await upload('wrong-hash', fixtures.disks.raw);
    assert.equal(res.statusCode, 400, res.body);
    assert.match(res.body, /sha256/);
  });

  test('a project over its quota is refused before and after the bytes arrive', async () => {
    await image('big', {}, 'small');
    const early = await call('POST', '/v1/images/big/uploads?project=small', { payload: { size: quota + 1 } });
    assert.equal(early.statusCode, 413, early.body);
    assert.match(early.body, /quota/);
    await t.store.create({ kind: 'image', project: 'small', name: 'filler', spec: {} }, by);
    await t.store.updateStatus({ kind: 'image', project: 'small', idOrName: 'filler' }, { phase: 'ready', sha256: 'e'.repeat(64), sizeBytes: quota - 1000 }, by);
    const late = await upload('big', fixtures.disks.raw, 'small');
    assert.equal(late.statusCode, 413, late.body);
    assert.equal((await t.store.get({ kind: 'image', project: 'small', idOrName: 'big' })).status.phase, 'failed');
  });

  test('an image is imported from a URL on the server side and its status followed', async () => {
    const served: Server = createServer((_req, res) => res.end(readFileSync(fixtures.disks.vdi)));
    await new Promise<void>((r) => served.listen(0, '127.0.0.1', r));
    try {
      await image('imported');
      const url = `http://127.0.0.1:${(served.address() as AddressInfo).port}/disk.vdi`;
      const res = await call('POST', '/v1/images/imported/import', { payload: { url } });
      assert.equal(res.statusCode, 202, res.body);
      const ready = await until('imported', (s) => s.phase !== 'uploading');
      assert.equal(ready.phase, 'ready');
      assert.equal(ready.sourceFormat, 'vdi');
      const bad = await call('POST', '/v1/images/imported/import', { payload: { url: 'file:///etc/passwd' } });
      assert.equal(bad.statusCode, 409);
      await image('not-http');
      await call('POST', '/v1/images/not-http/import', { payload: { url: 'ftp://127.0.0.1/x' } });
      assert.equal((await until('not-http', (s) => s.phase !== 'uploading')).phase, 'failed');
    } finally {
      served.close();
    }
  });

  /** Waits for an image status to match, on the store's watch. */
  async function until(name: string, pred: (s: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 20_000);
    try {
      const cur = await t.store.get({ kind: 'image', idOrName: name });
      if (pred(cur.status)) return cur.status;
      for await (const ev of t.store.watch({ kinds: ['image'], fromRevision: cur.revision }, ac.signal))
        if (ev.type === 'put' && ev.object.name === name && pred(ev.object.status)) return ev.object.status;
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
    return assert.fail(`image "${name}" never matched`);
  }

  test('an image in use cannot be deleted, a deprecated one is hidden from new VMs, and the last record of a blob frees it', async () => {
    await image('used');
    await image('twin');
    // Bytes no other test uploads, as raw and as qcow2: one blob.
    const raw = join(root, 'unique.raw');
    writeFileSync(raw, randomBytes(64 * 1024));
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, `${raw}.qcow2`]);
    const a = (await upload('used', raw)).json<AnyObject>();
    const b = (await upload('twin', `${raw}.qcow2`)).json<AnyObject>();
    const sha = (a.status as { sha256: string }).sha256;
    assert.equal((b.status as { sha256: string }).sha256, sha, 'the same bytes are stored once');
    await t.store.create({ kind: 'vm', name: 'user', spec: { image: 'used', machineType: 'small' } }, by);
    const refused = await call('DELETE', '/v1/images/used');
    assert.equal(refused.statusCode, 409, refused.body);
    await t.store.update({ kind: 'image', idOrName: 'used' }, { labels: {}, metadata: {}, spec: { deprecated: true } }, by);
    const hidden = await call('POST', '/v1/vms', { payload: { name: 'newer', spec: { image: 'used', machineType: 'small' } } });
    assert.equal(hidden.statusCode, 400);
    assert.match(hidden.body, /deprecated/);
    const blobPath = () => filesUnder(join(dataDir, 'blobs')).filter((f) => f.endsWith(sha));
    assert.equal((await call('DELETE', '/v1/images/twin')).statusCode, 200);
    await t.store.delete({ kind: 'vm', idOrName: 'user' }, by);
    const gone = new Promise<string>((r) => (swept = r));
    assert.equal(blobPath().length, 1, 'the other record keeps the blob');
    assert.equal((await call('DELETE', '/v1/images/used')).statusCode, 200);
    assert.equal(await gone, sha);
    assert.deepEqual(blobPath(), []);
  });

  test('a node credential downloads only the images its VMs use', async () => {
    const node = { authorization: await t.enrol('host-img') };
    await image('mine');
    await image('theirs');
    await upload('mine', fixtures.disks.raw);
    await upload('theirs', fixtures.disks.raw);
    await t.store.create({ kind: 'vm', name: 'on-node', spec: { image: 'mine', machineType: 'small' } }, by);
    await t.store.updateStatus({ kind: 'vm', idOrName: 'on-node' }, { phase: 'scheduled', node: 'host-img' }, by);
    const get = (name: string) => t.app.inject({ method: 'GET', url: `/v1/images/${name}/content`, headers: node });
    assert.equal((await get('mine')).statusCode, 200);
    assert.equal((await get('theirs')).statusCode, 403);
    const upl = await t.app.inject({ method: 'POST', url: '/v1/images/mine/uploads', headers: node, payload: {} });
    assert.equal(upl.statusCode, 403);
  });
});
