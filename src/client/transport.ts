import { ApiError } from '../api/errors.ts';

/** How the client reaches the server; `fetch` is injectable (tests, TLS pinning in the CLI). */
export interface ClientOptions {
  /** e.g. `http://127.0.0.1:7443`; a trailing slash is ignored. */
  baseUrl: string;
  /** The opaque Authorization header value, e.g. `Bearer <token>`. */
  authorization?: string;
  fetch?: typeof fetch;
}

export type QueryValue = string | number | readonly string[] | undefined;

/** One HTTP request to the API. */
export interface ApiRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Starts with `/`, e.g. `/v1/vms/web-1`. */
  path: string;
  query?: Record<string, QueryValue>;
  body?: unknown;
  contentType?: string;
  accept?: string;
  /** Sent as `If-Match: "<revision>"`. */
  ifMatch?: number;
  /** Sent as `X-Crowd-Reason`, kept in the history. */
  reason?: string;
  signal?: AbortSignal;
}

const maxReason = 1024;

/** Rejects a reason the header cannot carry before anything is sent. */
function checkReason(reason: string): void {
  const message =
    reason.length > maxReason
      ? `longer than ${maxReason} characters`
      : /[^\x20-\x7e\u00a0-\u00ff]/.test(reason)
        ? 'only printable Latin-1 characters fit in a header'
        : undefined;
  if (message) throw new ApiError('invalid', `Invalid reason: ${message}`, { details: [{ path: 'reason', message }] });
}

/** The HTTP layer under the typed client: URLs, headers, and non-2xx answers as `ApiError`. */
export class Transport {
  readonly baseUrl: string;
  private readonly authorization: string | undefined;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.authorization = opts.authorization;
    this.fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
  }

  url(path: string, query: Record<string, QueryValue> = {}): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined) continue;
      if (typeof v === 'string' || typeof v === 'number') params.append(k, String(v));
      else for (const item of v) params.append(k, item);
    }
    const qs = params.toString();
    return `${this.baseUrl}${path}${qs ? `?${qs}` : ''}`;
  }

  /** Sends the request; resolves with the response when it is 2xx, else rejects with the API's error. */
  async open(req: ApiRequest): Promise<Response> {
    const headers: Record<string, string> = { accept: req.accept ?? 'application/json' };
    if (this.authorization) headers.authorization = this.authorization;
    if (req.ifMatch !== undefined) headers['if-match'] = `"${req.ifMatch}"`;
    if (req.reason !== undefined) {
      checkReason(req.reason);
      headers['x-crowd-reason'] = req.reason;
    }
    let body: string | undefined;
    if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers['content-type'] = req.contentType ?? 'application/json';
    }
    const url = this.url(req.path, req.query);
    let res: Response;
    try {
      res = await this.fetchImpl(url, { method: req.method, headers, body, signal: req.signal });
    } catch (e) {
      if (req.signal?.aborted) throw e;
      const cause = (e as { cause?: { message?: string } }).cause;
      const why = cause?.message ?? (e as Error).message;
      throw new ApiError('unavailable', `Cannot reach server "${this.baseUrl}": ${why}`, { cause: e });
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => '');
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    throw ApiError.fromBody(res.status, parsed);
  }

  /** Sends the request and parses the JSON answer. */
  async json<T>(req: ApiRequest): Promise<T> {
    const res = await this.open(req);
    const text = await res.text();
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new ApiError('internal', `Cannot read the answer to ${req.method} ${req.path}: not JSON`, { cause: e });
    }
  }
}
