import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** The sha256 state of a file's whole content, read as a stream (for resuming and for verifying stored blobs). */
export async function hashFile(path: string): Promise<{ hash: Hash; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hash, size };
}
