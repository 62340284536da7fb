import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AnyObject } from '../api/object.ts';
import { FakeClock } from '../base/clock.ts';
import { silentLogger } from '../base/logger.ts';
import { ImageCache } from './image-cache.ts';
import { contentOpener, pullImage } from './image-pull.ts';

const blob = randomBytes(256 * 1024);
const sha = createHash('sha256').update(blob).digest('hex');
const other = randomBytes(64 * 1024);
const otherSha = createHash('sha256').update(other).digest('hex');
/** Many write batches (4 MiB each), so the pull's batching runs. */
const big = randomBytes(40 * 1024 * 1024);
const bigSha = createHash('sha256').update(big).digest('hex');

let root: string;
let server: Server;
let url: string;
/** Requests seen, and whether the next one is cut after this many bytes. */
let seen: { path: string; range?: string }[] = [];
let cutAfter: number | undefined;
/** When set, the next answer sends this many bytes and then stalls; `held` is told once they are in the socket. */
let holdAfter: number | undefined;
let held: (() => void) | undefined;

/** Serves both blobs like the image content route: ETag, Range → 206; can cut a transfer midway. */
function serve(req: IncomingMessage, res: import('node:http').ServerResponse): void {
  seen.push({ path: req.url ?? '', ...(req.headers.range ? { range: req.headers.range } : {}) });
  const bytes = req.url?.startsWith('/v1/images/other') ? other : req.url?.startsWith('/v1/images/big') ? big : blob;
  const hash = bytes === other ? otherSha : bytes === big ? bigSha : sha;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = m ? Number(m[1]) : 0;
  const headers = { etag: `"${hash}"`, 'content-length': String(bytes.length - start) };
  if (m) res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` });
  else res.writeHead(200, headers);
  if (cutAfter !== undefined) {
    const n = cutAfter;
    cutAfter = undefined;
    res.write(bytes.subarray(start, start + n), () => res.destroy());
    return;
  }
  if (holdAfter !== undefined) {
    const n = holdAfter;
    holdAfter = undefined;
    res.write(bytes.subarray(start, start + n), () => held?.());
    return;
  }
  res.end(bytes.subarray(start));
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'crowd-image-cache-'));
  server = createServer(serve);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  rmSync(root, { recursive: true, force: true });
});

const open = () => contentOpener(() => ({ url, authorization: 'Bearer node' }));
const imageDoc = (name: string, hash: string, extra: Record<string, unknown> = {}): AnyObject =>
  ({ kind: 'image', id: `img_${name}`, name, project: 'default', spec: {}, status: { phase: 'ready', format: 'qcow2', sha256: hash, ...extra } }) as unknown as AnyObject;

test('a pull cut midway leaves no usable file, only a partial one no longer than what arrived', async () => {
  const path = join(root, 'cut.qcow2');
  cutAfter = 100_000;
  await assert.rejects(pullImage(open(), { name: 'debian', project: 'default', sha256: sha, path }));
  assert.equal(existsSync(path), false);
  assert.ok(!existsSync(`${path}.partial`) || statSync(`${path}.partial`).size <= 100_000);
  await pullImage(open(), { name: 'debian', project: 'default', sha256: sha, path });
  assert.deepEqual(readFileSync(path), blob);
});

test('an interrupted pull resumes with a Range from where it stopped and the file appears only once verified', async () => {
  seen = [];
  const path = join(root, 'resumed.qcow2');
  const partial = 100_000;
  writeFileSync(`${path}.partial`, blob.subarray(0, partial));
  const out = await pullImage(open(), { name: 'debian', project: 'default', sha256: sha, path });
  assert.equal(out.resumedFrom, partial);
  assert.deepEqual(seen, [{ path: '/v1/images/debian/content?project=default', range: `bytes=${partial}-` }]);
  assert.deepEqual(readFileSync(path), blob);
  assert.equal(statSync(path).mode & 0o777, 0o444);
  assert.equal(existsSync(`${path}.partial`), false);
});

test('bytes that do not hash to the expected sha256 are removed and refused', async () => {
  const path = join(root, 'mismatch.qcow2');
  await assert.rejects(pullImage(open(), { name: 'debian', project: 'default', sha256: 'a'.repeat(64), path }), /sha256/);
  writeFileSync(`${path}.partial`, Buffer.alloc(10));
  await assert.rejects(pullImage(open(), { name: 'other', project: 'default', sha256: otherSha, path }), /hash to/);
  assert.equal(existsSync(path), false);
  assert.equal(existsSync(`${path}.partial`), false);
});

test('a pull of many write batches arrives whole, in order, verified and read-only', async () => {
  const path = join(root, 'big.qcow2');
  const out = await pullImage(open(), { name: 'big', project: 'default', sha256: bigSha, path });
  assert.equal(out.bytes, big.length);
  assert.ok(readFileSync(path).equals(big));
  assert.equal(statSync(path).mode & 0o777, 0o444);
});

test('a large pull whose bytes do not hash to the expected sha256 leaves neither a file nor a partial one', async () => {
  const path = join(root, 'big-mismatch.qcow2');
  const wrong = createHash('sha256').update('not the image').digest('hex');
  // Without the ETag, so the bytes themselves are what gets refused.
  const opener = async () => new Response((await open()({ name: 'big', project: 'default' }, {})).body, { status: 200 });
  await assert.rejects(pullImage(opener, { name: 'big', project: 'default', sha256: wrong, path }), /hash to/);
  assert.equal(existsSync(path), false);
  assert.equal(existsSync(`${path}.partial`), false);
});

test('an aborted pull stops, shows no file, keeps at most what arrived, and the next pull resumes to the whole blob', async () => {
  const path = join(root, 'aborted.qcow2');
  const controller = new AbortController();
  holdAfter = 100_000;
  held = () => controller.abort();
  await assert.rejects(pullImage(open(), { name: 'big', project: 'default', sha256: bigSha, path, signal: controller.signal }), { name: 'AbortError' });
  held = undefined;
  assert.equal(existsSync(path), false);
  assert.ok(statSync(`${path}.partial`).size <= 100_000);
  await pullImage(open(), { name: 'big', project: 'default', sha256: bigSha, path });
  assert.ok(readFileSync(path).equals(big));
});

test('the cache pulls each hash once for every image naming it, waits while pulling, and refuses images without content', async () => {
  seen = [];
  const clock = new FakeClock();
  const cache = new ImageCache({ dir: join(root, 'cache-a'), open: open(), clock, logger: silentLogger() });
  let changes = 0;
  cache.onChange(() => changes++);
  assert.match(JSON.stringify(cache.lookup(imageDoc('debian', sha))), /waiting.*pulling image \\"debian\\"/);
  assert.ok('waiting' in cache.lookup(imageDoc('debian-copy', sha)));
  await cache.settle();
  assert.equal(seen.length, 1);
  assert.equal(changes, 1);
  assert.deepEqual(cache.lookup(imageDoc('debian-copy', sha)), { path: join(root, 'cache-a', 'sha256', `${sha}.qcow2`), format: 'qcow2' });
  assert.ok('waiting' in cache.lookup(imageDoc('media', sha, { format: 'iso' })));
  await cache.settle();
  assert.deepEqual(cache.lookup(imageDoc('media', sha, { format: 'iso' })), { path: join(root, 'cache-a', 'sha256', `${sha}.iso`), format: 'raw' });
  assert.match(JSON.stringify(cache.lookup({ ...imageDoc('empty', sha), status: {} } as AnyObject)), /holds no content/);
  await cache.close();
});

test('unused images are evicted least recently used first once the cache passes its bound; images in use stay', async () => {
  const clock = new FakeClock();
  const cache = new ImageCache({ dir: join(root, 'cache-b'), open: open(), clock, logger: silentLogger(), maxBytes: blob.length, unusedAfterMs: 1000 });
  cache.lookup(imageDoc('other', otherSha));
  await cache.settle();
  clock.advance(500);
  cache.lookup(imageDoc('debian', sha));
  await cache.settle();
  assert.deepEqual(cache.evict(), [], 'nothing is unused yet');
  clock.advance(2000);
  cache.lookup(imageDoc('debian', sha)); // still in use; this lookup also runs the periodic eviction
  assert.equal(existsSync(join(cache.blobDir, `${otherSha}.qcow2`)), false);
  assert.deepEqual(cache.evict(), [], 'already evicted');
  assert.ok('path' in cache.lookup(imageDoc('debian', sha)));
  await cache.close();
});
