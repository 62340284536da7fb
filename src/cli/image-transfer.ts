import { SingleBar } from 'cli-progress';
import { ApiError } from '../api/errors.ts';
import { pinnedFetch } from '../base/pinned-fetch.ts';
import type { CliContext } from './context.ts';

/** One raw HTTP request of an image transfer: streamed bodies and headers the JSON client does not carry. */
export interface TransferRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PATCH';
  path: string;
  project?: string;
  headers?: Record<string, string>;
  body?: ReadableStream<Uint8Array> | string;
}

/**
 * Image uploads and downloads move bytes, not JSON: this opens requests with
 * the same server, token and pinned certificate as the CLI's client, and turns
 * non-2xx answers into the API's errors.
 */
export class ImageTransfer {
  private readonly server: string;
  private readonly authorization: string | undefined;
  private readonly fetchImpl: typeof fetch;
  /** Ends the pinned connection pool, if one was opened. */
  readonly close: () => Promise<void> = async () => {};

  constructor(ctx: CliContext) {
    const s = ctx.settings();
    this.server = s.server.replace(/\/+$/, '');
    this.authorization = s.token ? `Bearer ${s.token}` : undefined;
    let f = ctx.io.fetch ?? globalThis.fetch.bind(globalThis);
    if (s.fingerprint && s.server.startsWith('https:')) {
      const pinned = pinnedFetch(s.fingerprint);
      f = pinned.fetch;
      this.close = pinned.close;
    }
    this.fetchImpl = f;
  }

  async open(req: TransferRequest): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
    if (this.authorization) headers.authorization = this.authorization;
    const url = `${this.server}${req.path}${req.project ? `?project=${encodeURIComponent(req.project)}` : ''}`;
    const init: RequestInit & { duplex?: 'half' } = { method: req.method, headers };
    if (req.body !== undefined) {
      init.body = req.body;
      if (typeof req.body !== 'string') init.duplex = 'half';
    }
    let res: Response;
    try {
      res = await this.fetchImpl(url, init);
    } catch (e) {
      const why = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
      throw new ApiError('unavailable', `Cannot reach server "${this.server}": ${why}`, { cause: e });
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => '');
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    throw ApiError.fromBody(res.status, body);
  }

  async json<T>(req: TransferRequest): Promise<T> {
    const res = await this.open({ ...req, headers: { ...req.headers, ...(typeof req.body === 'string' ? { 'content-type': 'application/json' } : {}) } });
    return (await res.json()) as T;
  }
}

const MiB = 1024 * 1024;

/** Shows transfer progress: a bar at a terminal, a line per tenth otherwise (logs stay readable). */
export class TransferProgress {
  private readonly bar: SingleBar | undefined;
  private lastTenth = -1;

  constructor(
    private readonly ctx: CliContext,
    private readonly what: string,
    private readonly total: number,
    start: number,
  ) {
    const stream = ctx.io.stderr as NodeJS.WriteStream;
    if (stream.isTTY) {
      this.bar = new SingleBar({ stream, format: `${what} [{bar}] {percentage}% | {value}/{total} MiB | {speed} MiB/s`, hideCursor: true });
      this.bar.start(Math.ceil(total / MiB), Math.floor(start / MiB), { speed: '0' });
    }
    this.startBytes = start;
    this.update(start);
  }

  private readonly startedAt = Date.now();
  private readonly startBytes: number;

  update(done: number): void {
    const seconds = Math.max(0.001, (Date.now() - this.startedAt) / 1000);
    const speed = ((done - this.startBytes) / MiB / seconds).toFixed(1);
    if (this.bar) return this.bar.update(Math.floor(done / MiB), { speed });
    const tenth = this.total === 0 ? 10 : Math.floor((done / this.total) * 10);
    if (tenth === this.lastTenth) return;
    this.lastTenth = tenth;
    this.ctx.warn(`${this.what}: ${(done / MiB).toFixed(1)} of ${(this.total / MiB).toFixed(1)} MiB (${tenth * 10}%)`);
  }

  stop(): void {
    this.bar?.stop();
  }
}
