import { open, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApiError } from '../../api/errors.ts';
import { HashingWriter } from './hashing-writer.ts';
import { streamFailure } from './stream-failure.ts';

/** What the caller expects of a stream before it is accepted. */
export interface IngestOptions {
  maxBytes: number;
  expectedSha256?: string;
  expectedSize?: number;
}

/**
 * Streams `body` into a new file at `path` with its sha256 computed on the
 * way in; a body over the cap, of the wrong size or hash, or cut short leaves
 * no file behind.
 */
export async function ingestStream(
  body: Readable,
  path: string,
  opts: IngestOptions,
): Promise<{ sha256: string; sizeBytes: number }> {
  const fh = await open(path, 'wx', 0o600);
  const writer = new HashingWriter(fh, { maxBytes: Math.min(opts.maxBytes, opts.expectedSize ?? Infinity) });
  try {
    await pipeline(body, writer).catch((e: unknown) => {
      throw streamFailure(e, writer.size);
    });
    const sha256 = writer.hash.digest('hex');
    checkExpected({ sha256, sizeBytes: writer.size }, opts);
    return { sha256, sizeBytes: writer.size };
  } catch (e) {
    await rm(path, { force: true });
    throw e;
  } finally {
    await fh.close();
  }
}

/** Refuses content whose size or sha256 differs from what the user said it would be. */
export function checkExpected(got: { sha256: string; sizeBytes: number }, want: Omit<IngestOptions, 'maxBytes'>): void {
  if (want.expectedSize !== undefined && got.sizeBytes !== want.expectedSize) {
    throw new ApiError(
      'invalid',
      `Cannot accept image: received "${got.sizeBytes}" bytes, expected "${want.expectedSize}"`,
    );
  }
  if (want.expectedSha256 !== undefined && got.sha256 !== want.expectedSha256.toLowerCase()) {
    throw new ApiError('invalid', `Cannot accept image: sha256 is "${got.sha256}", expected "${want.expectedSha256}"`, {
      details: [{ path: 'sha256', message: `content hash is ${got.sha256}` }],
    });
  }
}
