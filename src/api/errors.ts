import { Type, type Static } from '@sinclair/typebox';

/** The closed set of error codes every API error carries. */
export const errorCodes = [
  'invalid',
  'unauthenticated',
  'forbidden',
  'not_found',
  'already_exists',
  'conflict',
  'precondition_failed',
  'gone',
  'too_large',
  'rate_limited',
  'unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

/** The one table from error code to HTTP status. */
export const httpStatus: Record<ErrorCode, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  precondition_failed: 412,
  gone: 410,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
};

/** One problem inside a request: where (a JSON pointer or parameter name) and what. */
export const ErrorDetail = Type.Object({
  path: Type.String(),
  message: Type.String(),
});
export type ErrorDetail = Static<typeof ErrorDetail>;

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.Union(errorCodes.map((c) => Type.Literal(c))),
    message: Type.String(),
    details: Type.Optional(Type.Array(ErrorDetail)),
  }),
});
export type ErrorBody = Static<typeof ErrorBody>;

/**
 * The only error that reaches a client with its message intact; anything
 * else becomes a generic `internal`.
 */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[] | undefined;
  /** Extra response headers, e.g. Retry-After. */
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { details?: ErrorDetail[]; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'ApiError';
    this.code = code;
    this.details = opts.details;
    this.headers = opts.headers;
  }

  get status(): number {
    return httpStatus[this.code];
  }

  toBody(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message };
    if (this.details && this.details.length > 0) error.details = this.details;
    return { error };
  }

  /** Rebuilds an ApiError from a response body; falls back to `internal`. */
  static fromBody(status: number, body: unknown): ApiError {
    const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
    if (e && typeof e.code === 'string' && (errorCodes as readonly string[]).includes(e.code)) {
      const details = Array.isArray(e.details) ? (e.details as ErrorDetail[]) : undefined;
      return new ApiError(e.code as ErrorCode, String(e.message ?? e.code), details ? { details } : {});
    }
    const code = (Object.entries(httpStatus).find(([, s]) => s === status)?.[0] ?? 'internal') as ErrorCode;
    return new ApiError(code, `Request failed with HTTP status ${status}`);
  }
}

export function invalid(path: string, message: string): ApiError {
  return new ApiError('invalid', `Invalid request: ${path}: ${message}`, { details: [{ path, message }] });
}
