import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ApiError } from '../../api/errors.ts';
import type { Runner } from '../../base/runner.ts';
import type { ImageLimits } from './image-limits.ts';
import { toolEnv, toolFailure } from './qemu-img.ts';
import { withLimits } from './with-limits.ts';

/** Compressions accepted around an image. */
export type Compression = 'gzip' | 'xz';

function bomb(maxBytes: number, cause?: unknown): ApiError {
  return new ApiError('too_large', `Cannot decompress image: it expands beyond the limit of "${maxBytes}" bytes`, { cause });
}

/**
 * Decompresses `src` into a new file `dst`, refusing output beyond
 * `maxDecompressedBytes` (a compression bomb); gzip in-process with
 * node:zlib, xz in a limited `xz -dc`. On failure `dst` is removed.
 */
export async function decompressFile(
  compression: Compression,
  src: string,
  dst: string,
  opts: { runner: Runner; limits: Pick<ImageLimits, 'maxDecompressedBytes' | 'toolMemoryBytes' | 'convertTimeoutMs'> },
): Promise<void> {
  const max = opts.limits.maxDecompressedBytes;
  try {
    switch (compression) {
      case 'gzip':
        await gunzipFile(src, dst, max);
        return;
      case 'xz':
        await unxzFile(src, dst, opts.runner, opts.limits);
        return;
    }
  } catch (e) {
    const size = await stat(dst).then((s) => s.size, () => 0);
    await rm(dst, { force: true });
    if (e instanceof ApiError && e.code === 'too_large') throw bomb(max, e);
    if (size >= max) throw bomb(max, e);
    if (e instanceof ApiError) throw e;
    throw new ApiError('invalid', `Cannot decompress image: ${compression} data is corrupt or truncated`, { cause: e });
  }
}

async function gunzipFile(src: string, dst: string, max: number): Promise<void> {
  let size = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > max) cb(bomb(max));
      else cb(null, chunk);
    },
  });
  const out = createWriteStream(dst, { flags: 'wx', mode: 0o600 });
  await pipeline(createReadStream(src), createGunzip(), cap, out);
}

async function unxzFile(
  src: string,
  dst: string,
  runner: Runner,
  limits: Pick<ImageLimits, 'maxDecompressedBytes' | 'toolMemoryBytes' | 'convertTimeoutMs'>,
): Promise<void> {
  const memlimit = Math.max(16 * 1024 * 1024, Math.floor(limits.toolMemoryBytes / 2));
  const script = `exec xz --decompress --stdout --memlimit-decompress=${memlimit} -- "$1" > "$2"`;
  const argv = withLimits(['sh', '-c', script, 'unxz', src, dst], {
    addressSpaceBytes: limits.toolMemoryBytes,
    fileSizeBytes: limits.maxDecompressedBytes,
  });
  try {
    await runner.run({ argv, env: toolEnv, timeoutMs: limits.convertTimeoutMs });
  } catch (e) {
    throw toolFailure(e, 'decompress', [src, dst]);
  }
}
