import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, rename, rm, stat, truncate } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

/** Asks the server for an image's content; `headers` carries the Range of a resumed pull. */
export type OpenContent = (ref: { name: string; project: string }, headers: Record<string, string>) => Promise<Response>;

export interface PullRequest {
  name: string;
  project: string;
  /** The stored blob's hash from the image's status: what the bytes must hash to. */
  sha256: string;
  /** Final path; bytes collect in `<path>.partial` until verified. */
  path: string;
  signal?: AbortSignal;
}

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}

/** The running hash of what a partial file already holds, so a resumed pull verifies the whole blob. */
async function hashPrefix(path: string, bytes: number): Promise<ReturnType<typeof createHash>> {
  const hash = createHash('sha256');
  if (bytes > 0) for await (const c of createReadStream(path, { end: bytes - 1 })) hash.update(c as Buffer);
  return hash;
}

/**
 * Pulls one image blob to `path`, resuming from `<path>.partial` with a
 * Range request, and hashing on the way; the file is renamed into place
 * (read-only) only when its sha256 matches. A server that ignores the
 * Range (200) restarts the file; a mismatch removes it and fails.
 */
export async function pullImage(open: OpenContent, req: PullRequest): Promise<{ resumedFrom: number; bytes: number }> {
  const partial = `${req.path}.partial`;
  let offset = await sizeOf(partial);
  const res = await open({ name: req.name, project: req.project }, offset > 0 ? { range: `bytes=${offset}-` } : {});
  if (!res.ok) {
    await res.body?.cancel();
    // A partial file as long as the blob (or longer) cannot be resumed: start over on the next try.
    if (offset > 0 && (res.status === 400 || res.status === 416)) await rm(partial, { force: true });
    throw new Error(`Cannot pull image "${req.name}": the server answered ${res.status}`);
  }
  const etag = res.headers.get('etag');
  if (etag && etag !== `"${req.sha256}"`) {
    await res.body?.cancel();
    throw new Error(`Cannot pull image "${req.name}": the server holds sha256 ${etag}, not "${req.sha256}"`);
  }
  if (res.status === 200 && offset > 0) {
    await truncate(partial, 0);
    offset = 0;
  } else if (res.status === 206) {
    const m = /^bytes (\d+)-\d+\/\d+$/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== offset) {
      await res.body?.cancel();
      throw new Error(`Cannot pull image "${req.name}": the server answered range "${res.headers.get('content-range')}" for offset ${offset}`);
    }
  }
  if (!res.body) throw new Error(`Cannot pull image "${req.name}": the answer has no body`);
  const hash = await hashPrefix(partial, offset);
  const hashing = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(res.body as WebReadableStream), hashing, createWriteStream(partial, { flags: 'a', mode: 0o600 }), req.signal ? { signal: req.signal } : {});
  const got = hash.digest('hex');
  if (got !== req.sha256) {
    await rm(partial, { force: true });
    throw new Error(`Cannot use image "${req.name}": its bytes hash to "${got}", expected "${req.sha256}"`);
  }
  await chmod(partial, 0o444);
  await rename(partial, req.path);
  return { resumedFrom: offset, bytes: await sizeOf(req.path) };
}

/** Opens `GET /v1/images/{name}/content` with the node's current credential (it may change on renewal). */
export function contentOpener(server: () => { url: string; authorization: string }, fetchImpl: typeof fetch = globalThis.fetch): OpenContent {
  return (ref, headers) => {
    const s = server();
    const url = `${s.url.replace(/\/+$/, '')}/v1/images/${encodeURIComponent(ref.name)}/content?project=${encodeURIComponent(ref.project)}`;
    return fetchImpl(url, { headers: { ...headers, authorization: s.authorization, accept: 'application/octet-stream' } });
  };
}
