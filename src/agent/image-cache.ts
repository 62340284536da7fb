import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageStatus } from '../api/kinds/image.ts';
import type { AnyObject } from '../api/object.ts';
import type { Clock } from '../base/clock.ts';
import type { Logger } from '../base/logger.ts';
import { backoffMs } from './reconcile.ts';
import { pullImage, type OpenContent } from './image-pull.ts';

/** What a VM's image is on this host: a file to boot from, a pull under way, or a reason it cannot be had. */
export type ImageAvailability = { path: string; format: 'qcow2' | 'raw' } | { waiting: string } | { problem: string };

export interface ImageCacheOptions {
  /** `<data-dir>/images`; blobs live in `sha256/<hash>.<qcow2|iso>`. */
  dir: string;
  open: OpenContent;
  clock: Clock;
  logger: Logger;
  /** Evict unused images beyond this many bytes (default 50 GiB). */
  maxBytes?: number;
  /** An image not asked for in this long is unused (default 60 s; the agent asks for each VM's image on every pass). */
  unusedAfterMs?: number;
  random?: () => number;
}

interface Pulling {
  done: Promise<void>;
  failures: number;
  /** Not before this time after a failure. */
  retryAt: number;
  error?: string;
}

const hashPattern = /^[0-9a-f]{64}$/;

/**
 * The host's image cache, shared by all VMs (each boots from a qcow2 overlay
 * over a cached base, never writing it). Images are kept by content hash, so
 * two image objects with the same bytes are pulled once. A lookup of an image
 * not yet here starts its pull in the background and answers `waiting`; the
 * pull resumes interrupted transfers and verifies the hash before the file
 * appears. Unused images are evicted least recently used first once the
 * cache passes its size bound.
 */
export class ImageCache {
  readonly blobDir: string;
  private readonly pulls = new Map<string, Pulling>();
  /** Last time each cached hash was asked for (LRU order; on start, the file's mtime). */
  private readonly used = new Map<string, number>();
  private readonly listeners: (() => void)[] = [];
  private readonly started: number;
  /** Eviction runs after each pull and, besides, at most once per `unusedAfterMs` from lookups. */
  private lastEvict = 0;
  private readonly abort = new AbortController();

  constructor(private readonly o: ImageCacheOptions) {
    this.blobDir = join(o.dir, 'sha256');
    mkdirSync(this.blobDir, { recursive: true, mode: 0o700 });
    this.started = o.clock.now();
  }

  /** Called when a pull finishes (the agent runs a reconcile pass). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** The cached file of an image object, or why not yet (starting its pull if needed). */
  lookup(image: AnyObject): ImageAvailability {
    const status = image.status as ImageStatus;
    if (status.phase !== 'ready' || !status.sha256 || !hashPattern.test(status.sha256))
      return { problem: `image "${image.name}" is not available on this host: it holds no content on the server` };
    const sha = status.sha256;
    const iso = status.format === 'iso';
    const path = this.pathOf(sha, iso);
    this.used.set(sha, this.o.clock.now());
    if (this.o.clock.now() - this.lastEvict >= (this.o.unusedAfterMs ?? 60_000)) this.evict();
    if (existsSync(path)) return { path, format: iso ? 'raw' : 'qcow2' };
    const pull = this.pulls.get(sha);
    if (!pull || (pull.error !== undefined && this.o.clock.now() >= pull.retryAt)) this.start(image, sha, path, pull?.failures ?? 0);
    const why = this.pulls.get(sha)?.error;
    return { waiting: `pulling image "${image.name}"${why ? ` (last try failed: ${why})` : ''}` };
  }

  /** Waits for every pull under way (tests, shutdown). */
  async settle(): Promise<void> {
    await Promise.all([...this.pulls.values()].map((p) => p.done));
  }

  /** Stops pulls under way; their partial files stay for the next run to resume. */
  async close(): Promise<void> {
    this.abort.abort();
    await this.settle();
  }

  /** Removes least recently used images no VM asked for lately until the cache fits its bound; returns the hashes removed. */
  evict(): string[] {
    const max = this.o.maxBytes ?? 50 * 1024 ** 3;
    const now = this.o.clock.now();
    const idle = this.o.unusedAfterMs ?? 60_000;
    if (now - this.started < idle) return [];
    this.lastEvict = now;
    const files = readdirSync(this.blobDir)
      .map((f) => /^([0-9a-f]{64})\.(qcow2|iso)$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => {
        const st = statSync(join(this.blobDir, m[0]));
        return { sha: m[1]!, file: join(this.blobDir, m[0]), size: st.size, used: this.used.get(m[1]!) ?? st.mtimeMs };
      })
      .sort((a, b) => a.used - b.used);
    let total = files.reduce((n, f) => n + f.size, 0);
    const removed: string[] = [];
    for (const f of files) {
      if (total <= max) break;
      if (now - f.used < idle) continue;
      rmSync(f.file, { force: true });
      this.used.delete(f.sha);
      total -= f.size;
      removed.push(f.sha);
    }
    if (removed.length) this.o.logger.info({ removed }, 'evicted unused images from the cache');
    return removed;
  }

  private pathOf(sha: string, iso: boolean): string {
    return join(this.blobDir, `${sha}.${iso ? 'iso' : 'qcow2'}`);
  }

  private start(image: AnyObject, sha: string, path: string, failures: number): void {
    const entry: Pulling = { done: Promise.resolve(), failures, retryAt: 0 };
    const started = this.o.clock.now();
    entry.done = pullImage(this.o.open, { name: image.name, project: image.project ?? 'default', sha256: sha, path, signal: this.abort.signal }).then(
      ({ resumedFrom, bytes }) => {
        this.pulls.delete(sha);
        this.o.logger.info({ image: image.name, sha256: sha, bytes, resumedFrom, ms: this.o.clock.now() - started }, 'image pulled');
        this.evict();
        for (const l of this.listeners) l();
      },
      (e: unknown) => {
        entry.failures++;
        entry.error = e instanceof Error ? e.message : String(e);
        entry.retryAt = this.o.clock.now() + backoffMs(entry.failures, (this.o.random ?? Math.random)(), { baseMs: 1000, capMs: 60_000 });
        if (!this.abort.signal.aborted) this.o.logger.warn({ image: image.name, sha256: sha, err: entry.error }, 'image pull failed; will retry');
      },
    );
    this.pulls.set(sha, entry);
  }
}
