import { createReadStream, type ReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiError } from '../../api/errors.ts';
import { ulid } from '../../base/ids.ts';

const sha256Pattern = /^[0-9a-f]{64}$/;

/** Whether a string is a lower-case hex sha256 (the only names blobs have). */
export function isSha256(s: string): boolean {
  return sha256Pattern.test(s);
}

/**
 * Content-addressed files under `<dataDir>/blobs/sha256/<aa>/<hash>`. New
 * content is written to `<dataDir>/tmp` (same filesystem), fsynced and renamed
 * into place, so a blob is either whole or absent; the same bytes are stored
 * once. Blobs are read-only once stored.
 */
export class BlobStore {
  readonly blobDir: string;
  readonly tmpDir: string;

  constructor(readonly dataDir: string) {
    this.blobDir = join(dataDir, 'blobs', 'sha256');
    this.tmpDir = join(dataDir, 'tmp');
  }

  /** Creates the directories and removes temp files a crash left behind. */
  async init(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  /** A fresh path in the temp directory (nothing is created). */
  tempPath(suffix: string): string {
    return join(this.tmpDir, `${ulid()}.${suffix}`);
  }

  /** Where the blob with this hash lives (whether or not it exists). */
  path(sha256: string): string {
    if (!isSha256(sha256)) throw new ApiError('invalid', `Cannot find blob "${sha256}": not a sha256`);
    return join(this.blobDir, sha256.slice(0, 2), sha256);
  }

  /** The blob's size, or undefined when it is not stored. */
  async size(sha256: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(sha256))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * Moves a finished temp file (whose content hashes to `sha256`) into the
   * store; if the blob already exists the temp file is dropped instead.
   */
  async put(tempFile: string, sha256: string): Promise<{ created: boolean }> {
    const dest = this.path(sha256);
    if ((await this.size(sha256)) !== undefined) {
      await rm(tempFile, { force: true });
      return { created: false };
    }
    await syncPath(tempFile);
    await chmod(tempFile, 0o444);
    const shard = join(this.blobDir, sha256.slice(0, 2));
    await mkdir(shard, { recursive: true });
    await rename(tempFile, dest);
    await syncPath(shard);
    return { created: true };
  }

  /** Reads a blob, optionally one inclusive byte range of it. */
  async open(sha256: string, range?: { start: number; end: number }): Promise<{ size: number; stream: ReadStream }> {
    const size = await this.size(sha256);
    if (size === undefined) throw new ApiError('not_found', `Cannot read image blob "${sha256}": not stored`);
    const stream = createReadStream(this.path(sha256), { ...range, highWaterMark: 1024 * 1024 });
    return { size, stream };
  }

  /** Deletes one blob; absent blobs are fine. */
  async remove(sha256: string): Promise<void> {
    await rm(this.path(sha256), { force: true });
  }

  /** Every stored hash. */
  async list(): Promise<string[]> {
    const out: string[] = [];
    for (const shard of await readdir(this.blobDir)) {
      for (const name of await readdir(join(this.blobDir, shard))) if (isSha256(name)) out.push(name);
    }
    return out.sort();
  }

  /** Removes every blob not in `live` (the hashes image records still point at); returns what it removed. */
  async sweep(live: Iterable<string>): Promise<string[]> {
    const keep = new Set(live);
    const removed: string[] = [];
    for (const h of await this.list()) {
      if (keep.has(h)) continue;
      await this.remove(h);
      removed.push(h);
    }
    return removed;
  }
}

/** Fsyncs a file or directory by path (a file already synced costs next to nothing). */
export async function syncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
