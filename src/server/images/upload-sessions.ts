import type { Hash } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApiError } from '../../api/errors.ts';
import { systemClock, type Clock } from '../../base/clock.ts';
import { objectId } from '../../base/ids.ts';
import { isSha256 } from './blob-store.ts';
import { hashFile } from './hash-file.ts';
import { HashingWriter } from './hashing-writer.ts';
import { checkExpected } from './ingest-stream.ts';
import { streamFailure } from './stream-failure.ts';

/** A resumable upload: bytes arrive in order, each append at the current `offset`. */
export interface UploadSession {
  id: string;
  createdAt: string;
  /** Bytes received so far: where the next append must start. */
  offset: number;
  expectedSize?: number;
  expectedSha256?: string;
  /** Opaque owner tag (the project), so routes can check who may continue it. */
  project?: string;
}

type SessionFile = Omit<UploadSession, 'offset'>;

const idPattern = /^upl_[0-9A-HJKMNP-TV-Z]{26}$/;

/**
 * Upload sessions kept on disk under `<dataDir>/uploads/<id>/` (session.json +
 * data), so a restarted server continues them. The running sha256 is kept in
 * memory and rebuilt by re-reading the partial file when missing.
 *
 *   create → append(offset=0) → append(offset=n) … → complete | abort | expire
 */
export class UploadSessions {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly clock: Clock;
  private readonly hashes = new Map<string, { hash: Hash; size: number }>();
  private readonly busy = new Set<string>();

  constructor(dataDir: string, opts: { maxBytes: number; clock?: Clock }) {
    this.dir = join(dataDir, 'uploads');
    this.maxBytes = opts.maxBytes;
    this.clock = opts.clock ?? systemClock;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  /** Starts a session; the expected size and sha256 are checked when it completes. */
  async create(opts: { expectedSize?: number; expectedSha256?: string; project?: string } = {}): Promise<UploadSession> {
    const { expectedSize, expectedSha256 } = opts;
    if (expectedSize !== undefined && (!Number.isSafeInteger(expectedSize) || expectedSize < 0)) {
      throw new ApiError('invalid', `Cannot start upload: size "${expectedSize}" is not a byte count`);
    }
    if (expectedSize !== undefined && expectedSize > this.maxBytes) {
      throw new ApiError('too_large', `Cannot start upload: size "${expectedSize}" is above the limit of "${this.maxBytes}" bytes`);
    }
    if (expectedSha256 !== undefined && !isSha256(expectedSha256.toLowerCase())) {
      throw new ApiError('invalid', `Cannot start upload: "${expectedSha256}" is not a sha256`);
    }
    const session: SessionFile = { id: objectId('upl', this.clock.now()), createdAt: new Date(this.clock.now()).toISOString() };
    if (expectedSize !== undefined) session.expectedSize = expectedSize;
    if (expectedSha256 !== undefined) session.expectedSha256 = expectedSha256.toLowerCase();
    if (opts.project !== undefined) session.project = opts.project;
    const dir = join(this.dir, session.id);
    await mkdir(dir);
    await (await open(join(dir, 'data'), 'wx', 0o600)).close();
    await writeFile(join(dir, 'session.json.tmp'), JSON.stringify(session), { mode: 0o600, flush: true });
    await rename(join(dir, 'session.json.tmp'), join(dir, 'session.json'));
    await this.touch(session.id);
    return { ...session, offset: 0 };
  }

  /** The session as stored, with its current offset. */
  async get(id: string): Promise<UploadSession> {
    if (!idPattern.test(id)) throw notFound(id);
    try {
      const session = JSON.parse(await readFile(join(this.dir, id, 'session.json'), 'utf8')) as SessionFile;
      return { ...session, offset: (await stat(this.dataPath(id))).size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(id);
      throw e;
    }
  }

  /**
   * Appends `body` at `offset`, which must equal the bytes received so far
   * (else `conflict`, with the current offset in `Upload-Offset`). A body cut
   * short keeps what arrived, so the client resumes from the new offset.
   */
  async append(id: string, offset: number, body: Readable): Promise<UploadSession> {
    this.lock(id, body);
    let fh: FileHandle | undefined;
    let writer: HashingWriter | undefined;
    try {
      const session = await this.get(id);
      if (offset !== session.offset) {
        throw new ApiError('conflict', `Cannot append to upload "${id}": offset "${offset}" is not the current offset "${session.offset}"`, {
          details: [{ path: 'offset', message: String(session.offset) }],
          headers: { 'Upload-Offset': String(session.offset) },
        });
      }
      const state = await this.hashState(id, session.offset);
      this.hashes.delete(id);
      fh = await open(this.dataPath(id), 'r+');
      writer = new HashingWriter(fh, { maxBytes: session.expectedSize ?? this.maxBytes, ...state });
      await pipeline(body, writer);
      this.hashes.set(id, { hash: writer.hash, size: writer.size });
      return { ...session, offset: writer.size };
    } catch (e) {
      if (!writer) body.resume();
      if (fh && writer) {
        await writer.settled();
        await fh.truncate(writer.size);
        await fh.sync();
        if (writer.hashMatchesFile) this.hashes.set(id, { hash: writer.hash, size: writer.size });
      }
      throw streamFailure(e, writer?.size ?? 0);
    } finally {
      await fh?.close();
      await this.touch(id);
      this.busy.delete(id);
    }
  }

  /**
   * Ends the session: checks size and sha256, moves the data to `dest` and
   * removes the session. A mismatch removes the session too.
   */
  async complete(id: string, dest: string): Promise<{ sha256: string; sizeBytes: number }> {
    this.lock(id);
    let found = false;
    try {
      const session = await this.get(id);
      found = true;
      const state = await this.hashState(id, session.offset);
      const got = { sha256: state.hash.digest('hex'), sizeBytes: state.size };
      checkExpected(got, session);
      await rename(this.dataPath(id), dest);
      return got;
    } finally {
      if (found) await this.remove(id);
      this.busy.delete(id);
    }
  }

  /** Drops a session and its bytes. */
  async abort(id: string): Promise<void> {
    this.lock(id);
    try {
      await this.get(id);
      await this.remove(id);
    } finally {
      this.busy.delete(id);
    }
  }

  /** Removes sessions idle for longer than `ttlMs`; returns their ids. */
  async expire(ttlMs: number): Promise<string[]> {
    const removed: string[] = [];
    for (const id of await readdir(this.dir)) {
      if (this.busy.has(id) || !idPattern.test(id)) continue;
      const last = await stat(this.dataPath(id))
        .catch(() => stat(join(this.dir, id)))
        .then((s) => s.mtimeMs, () => 0);
      if (this.clock.now() - last <= ttlMs) continue;
      await this.remove(id);
      removed.push(id);
    }
    return removed;
  }

  private dataPath(id: string): string {
    return join(this.dir, id, 'data');
  }

  /** Claims the session for one request; a body that cannot be used is drained so its request ends. */
  private lock(id: string, body?: Readable): void {
    if (!idPattern.test(id)) {
      body?.resume();
      throw notFound(id);
    }
    if (this.busy.has(id)) {
      body?.resume();
      throw new ApiError('conflict', `Cannot use upload "${id}": another request is using it`);
    }
    this.busy.add(id);
  }

  private async hashState(id: string, size: number): Promise<{ hash: Hash; size: number }> {
    const known = this.hashes.get(id);
    if (known && known.size === size) return known;
    const fresh = await hashFile(this.dataPath(id));
    this.hashes.set(id, fresh);
    return fresh;
  }

  private async touch(id: string): Promise<void> {
    const t = this.clock.now() / 1000;
    await utimes(this.dataPath(id), t, t).catch(() => {});
  }

  private async remove(id: string): Promise<void> {
    this.hashes.delete(id);
    await rm(join(this.dir, id), { recursive: true, force: true });
  }
}

function notFound(id: string): ApiError {
  return new ApiError('not_found', `Cannot find upload "${id}"`);
}
