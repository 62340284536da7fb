import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { ApiError } from '../../api/errors.ts';

/**
 * A stream sink that writes to a file at a known position and updates a
 * sha256 on the way, so a body is hashed without being held in memory. The
 * hash of a batch runs while its write is in flight; `size` counts only bytes
 * that reached the file, and `hashMatchesFile` turns false if a write failed
 * after its bytes were hashed (then rebuild the hash from the file).
 */
export class HashingWriter extends Writable {
  readonly hash: Hash;
  size: number;
  hashMatchesFile = true;
  private readonly fh: FileHandle;
  private readonly maxBytes: number;
  private pending: Promise<unknown> = Promise.resolve();

  constructor(fh: FileHandle, opts: { maxBytes: number; hash?: Hash; size?: number }) {
    super({ highWaterMark: 4 * 1024 * 1024 });
    this.fh = fh;
    this.maxBytes = opts.maxBytes;
    this.hash = opts.hash ?? createHash('sha256');
    this.size = opts.size ?? 0;
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    const buffers = chunks.map((c) => c.chunk);
    const length = buffers.reduce((n, b) => n + b.length, 0);
    if (this.size + length > this.maxBytes) {
      cb(new ApiError('too_large', `Cannot store image: it is larger than the limit of "${this.maxBytes}" bytes`));
      return;
    }
    this.pending = this.writeAll(buffers, length).then(
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

  /** Resolves once no write is in flight, so `size` (and, if it still matches, `hash`) describe the file. */
  async settled(): Promise<void> {
    await this.pending.catch(() => {});
  }

  private async writeAll(buffers: Buffer[], length: number): Promise<void> {
    const written = this.writeAt(buffers, length, this.size);
    for (const b of buffers) this.hash.update(b);
    try {
      await written;
    } catch (e) {
      this.hashMatchesFile = false;
      throw e;
    }
    this.size += length;
  }

  /** One writev for the batch; a short write (rare on files) finishes with plain writes. */
  private async writeAt(buffers: Buffer[], length: number, position: number): Promise<void> {
    let done = (await this.fh.writev(buffers, position)).bytesWritten;
    if (done === length) return;
    const rest = Buffer.concat(buffers, length);
    while (done < length) done += (await this.fh.write(rest, done, length - done, position + done)).bytesWritten;
  }
}
