import type { ReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { ApiError } from '../../api/errors.ts';
import type { Clock } from '../../base/clock.ts';
import type { Runner } from '../../base/runner.ts';
import { BlobStore } from './blob-store.ts';
import { parseByteRange, type ByteRange } from './byte-range.ts';
import { fetchUrl } from './fetch-url.ts';
import { defaultImageLimits, type ImageLimits } from './image-limits.ts';
import { ingestStream } from './ingest-stream.ts';
import { processImage, type StoredImage } from './process-image.ts';
import { QemuImg } from './qemu-img.ts';
import { UploadSessions, type UploadSession } from './upload-sessions.ts';

export interface ImageRepositoryOptions {
  /** The server's data dir; blobs, tmp and uploads live under it. */
  dataDir: string;
  runner: Runner;
  limits?: Partial<ImageLimits>;
  clock?: Clock;
  /** Which addresses URL imports may reach (see fetchUrl). */
  allowAddress?: (address: string) => boolean;
}

/** What the user promises about the bytes they send. */
export interface ImageExpectation {
  expectedSha256?: string;
  expectedSize?: number;
}

/** A blob opened for download or a host pull; `range` is set for a partial (206) answer. */
export interface OpenedBlob {
  size: number;
  range?: ByteRange;
  stream: ReadStream;
}

/**
 * The server's image store, for the HTTP routes: uploads (one-shot or
 * resumable), URL imports, downloads with Range, removal. Every way in ends in
 * processImage, so every image passes the same checks; failures leave nothing
 * in the data dir. Image records (names, projects, labels) stay in the
 * store; this class knows only blobs.
 */
export class ImageRepository {
  readonly limits: ImageLimits;
  readonly blobs: BlobStore;
  readonly uploads: UploadSessions;
  private readonly runner: Runner;
  private readonly qemuImg: QemuImg;
  private readonly allowAddress: ((address: string) => boolean) | undefined;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(opts: ImageRepositoryOptions) {
    this.limits = { ...defaultImageLimits, ...opts.limits };
    this.runner = opts.runner;
    this.blobs = new BlobStore(opts.dataDir);
    this.uploads = new UploadSessions(opts.dataDir, {
      maxBytes: this.limits.maxUploadBytes,
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    this.qemuImg = new QemuImg(opts.runner, this.limits);
    this.allowAddress = opts.allowAddress;
  }

  /** Creates the directories and clears temp files a crash left behind; call once at startup. */
  async init(): Promise<void> {
    await this.blobs.init();
    await this.uploads.init();
  }

  /** A whole image in one request body. */
  async upload(body: Readable, expect: ImageExpectation = {}): Promise<StoredImage> {
    const tmp = this.blobs.tempPath('upload');
    const source = await ingestStream(body, tmp, { maxBytes: this.limits.maxUploadBytes, ...expect });
    return this.process(tmp, source);
  }

  /** Starts a resumable upload; the answer's `id` names it in the calls below. */
  beginUpload(opts: ImageExpectation & { project?: string } = {}): Promise<UploadSession> {
    const { expectedSha256, expectedSize, project } = opts;
    return this.uploads.create({ expectedSha256, expectedSize, project });
  }

  /** The session with its current offset (where a client resumes). */
  uploadStatus(id: string): Promise<UploadSession> {
    return this.uploads.get(id);
  }

  /** Appends a chunk at `offset`; a wrong offset is `conflict` carrying the right one. */
  appendUpload(id: string, offset: number, body: Readable): Promise<UploadSession> {
    return this.uploads.append(id, offset, body);
  }

  /** Verifies the whole upload, then processes and stores it; the session is gone afterwards either way. */
  async finishUpload(id: string): Promise<StoredImage> {
    const tmp = this.blobs.tempPath('upload');
    const source = await this.uploads.complete(id, tmp);
    return this.process(tmp, source);
  }

  abortUpload(id: string): Promise<void> {
    return this.uploads.abort(id);
  }

  /** Drops sessions idle longer than the configured TTL (call periodically). */
  expireUploads(): Promise<string[]> {
    return this.uploads.expire(this.limits.uploadSessionTtlMs);
  }

  /** Fetches an http(s) URL on the server side, with the same caps and checks as an upload. */
  async importUrl(url: string, expect: ImageExpectation = {}): Promise<StoredImage> {
    const { body } = await fetchUrl(url, {
      maxRedirects: this.limits.maxRedirects,
      maxBytes: this.limits.maxUploadBytes,
      ...(this.allowAddress ? { allowAddress: this.allowAddress } : {}),
    });
    return this.upload(body, expect);
  }

  /** Opens a stored blob for reading; `rangeHeader` is the request's `Range` header, if any. */
  async open(sha256: string, rangeHeader?: string): Promise<OpenedBlob> {
    const size = await this.blobs.size(sha256);
    if (size === undefined) throw new ApiError('not_found', `Cannot find image blob "${sha256}"`);
    const range = parseByteRange(rangeHeader, size);
    const { stream } = await this.blobs.open(sha256, range);
    return range ? { size, range, stream } : { size, stream };
  }

  /** The stored blob's size, or undefined. */
  size(sha256: string): Promise<number | undefined> {
    return this.blobs.size(sha256);
  }

  /** Deletes a blob; the caller checks that no image record still points at it. */
  remove(sha256: string): Promise<void> {
    return this.blobs.remove(sha256);
  }

  /** Deletes every blob no image record points at. */
  sweep(live: Iterable<string>): Promise<string[]> {
    return this.blobs.sweep(live);
  }

  private async process(tmp: string, source: { sha256: string; sizeBytes: number }): Promise<StoredImage> {
    try {
      await this.acquire();
      return await processImage(tmp, source, {
        blobs: this.blobs,
        runner: this.runner,
        qemuImg: this.qemuImg,
        limits: this.limits,
      });
    } finally {
      this.release();
      await rm(tmp, { force: true });
    }
  }

  /** Waits for one of `maxConcurrentConversions` slots; release hands it straight to the next waiter. */
  private async acquire(): Promise<void> {
    if (this.running < this.limits.maxConcurrentConversions) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}
