import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ApiError } from '../api/errors.ts';
import type { CliContext } from './context.ts';
import { ImageTransfer, TransferProgress } from './image-transfer.ts';

/**
 * `crowd image download NAME -o FILE`: fetches the stored blob into
 * `FILE.partial`, continuing an earlier partial file with a Range request,
 * checks the sha256 the server names in its ETag, then renames it to FILE.
 */
export async function downloadImage(ctx: CliContext, o: { name: string; output: string; project?: string }): Promise<{ sha256: string; bytes: number }> {
  const partial = `${o.output}.partial`;
  const http = new ImageTransfer(ctx);
  try {
    let offset = await stat(partial).then(
      (s) => s.size,
      () => 0,
    );
    const path = `/v1/images/${encodeURIComponent(o.name)}/content`;
    const get = (from: number) =>
      http.open({ method: 'GET', path, ...(o.project ? { project: o.project } : {}), headers: { accept: 'application/octet-stream', ...(from > 0 ? { range: `bytes=${from}-` } : {}) } });
    const res = await get(offset).catch(async (e: unknown) => {
      // A partial file as long as the blob cannot be continued: start over.
      if (!(e instanceof ApiError && e.code === 'invalid' && offset > 0)) throw e;
      await rm(partial, { force: true });
      offset = 0;
      return get(0);
    });
    if (res.status !== 206) offset = 0;
    else ctx.warn(`Resuming the download of ${o.name} at byte ${offset}`);
    const expected = (res.headers.get('etag') ?? '').replace(/"/g, '');
    const total = offset + Number(res.headers.get('content-length') ?? 0);
    const hash = createHash('sha256');
    if (offset > 0) for await (const c of createReadStream(partial, { end: offset - 1 })) hash.update(c as Buffer);
    const progress = new TransferProgress(ctx, `Downloading ${o.name}`, total, offset);
    let done = offset;
    const counting = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        done += chunk.length;
        progress.update(done);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as WebReadableStream), counting, createWriteStream(partial, { flags: offset > 0 ? 'a' : 'w', mode: 0o644 }));
    } finally {
      progress.stop();
    }
    const got = hash.digest('hex');
    if (expected && got !== expected) {
      await rm(partial, { force: true });
      throw new Error(`Cannot save image "${o.name}": the bytes hash to "${got}", the server named "${expected}"`);
    }
    await rename(partial, o.output);
    return { sha256: got, bytes: done };
  } finally {
    await http.close();
  }
}
