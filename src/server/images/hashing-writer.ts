import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { ApiError } from '../../api/errors.ts';

/**
 * A stream sink that writes to a file at a known position and updates a
 * sha256 as each chunk lands, so a body is hashed on the way in without being
 * held in memory. `hash` and `size` only ever count bytes that reached the
 * file, so after any failure they still describe the file's contents.
 */
export class HashingWriter extends Writable {
  readonly hash: Hash;
  size: number;
  private readonly fh: FileHandle;
  private readonly maxBytes: number;
  private pending: Promise<unknown> = Promise.resolve();

  constructor(fh: FileHandle, opts: { maxBytes: number; hash?: Hash; size?: number }) {
    super({ highWaterMark: 1024 * 1024 });
    this.fh = fh;
    this.maxBytes = opts.maxBytes;
    this.hash = opts.hash ?? createHash('sha256');
    this.size = opts.size ?? 0;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.size + chunk.length > this.maxBytes) {
      cb(new ApiError('too_large', `Cannot store image: it is larger than the limit of "${this.maxBytes}" bytes`));
      return;
    }
    this.pending = this.writeAll(chunk).then(
      () => cb(),
      (e: Error) => cb(e),
    );
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.fh.sync().then(
      () => cb(),
      (e: Error) => cb(e),
    );
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.pending.finally(() => cb(err));
  }

  /** Resolves once no write is in flight, so `size` and `hash` match the file. */
  async settled(): Promise<void> {
    await this.pending.catch(() => {});
  }

  private async writeAll(chunk: Buffer): Promise<void> {
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, done, chunk.length - done, this.size + done);
      done += bytesWritten;
    }
    this.hash.update(chunk);
    this.size += chunk.length;
  }
}
