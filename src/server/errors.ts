import type { FastifyInstance } from 'fastify';
import { ApiError, httpStatus, type ErrorCode } from '../api/errors.ts';
import type { Logger } from '../base/logger.ts';

interface FrameworkError {
  code?: unknown;
  statusCode?: unknown;
}

const codeByStatus = new Map<number, ErrorCode>(
  (Object.entries(httpStatus) as [ErrorCode, number][]).filter(([c]) => c !== 'conflict').map(([c, s]) => [s, c]),
);

/**
 * The error a client may see for any thrown value: ApiErrors as they are,
 * fastify's own request errors (bad JSON, body too large, media type) as
 * `invalid`/`too_large`, everything else `undefined` (a generic `internal`).
 */
export function publicError(err: unknown, opts: { bodyLimit: number }): ApiError | undefined {
  if (err instanceof ApiError) return err;
  const e = (err ?? {}) as FrameworkError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('too_large', `Cannot accept request body: larger than ${opts.bodyLimit} bytes`, {
        details: [{ path: '/', message: `body exceeds ${opts.bodyLimit} bytes` }],
      });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('invalid', 'Cannot parse request body: not valid JSON', {
        details: [{ path: '/', message: 'body is not valid JSON' }],
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('invalid', 'Cannot parse request body: unsupported content type, send application/json', {
        details: [{ path: 'Content-Type', message: 'unsupported media type' }],
      });
  }
  // Fastify's remaining request errors (bad URL, content length mismatch…) carry a 4xx and a safe message.
  if (typeof e.code === 'string' && e.code.startsWith('FST_') && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(codeByStatus.get(e.statusCode) ?? 'invalid', `Cannot handle request: ${(err as Error).message}`);
  }
  return undefined;
}

/** The one place where errors become responses; unexpected errors are logged and answered with a generic `internal`. */
export function installErrorBoundary(app: FastifyInstance, opts: { logger: Logger; bodyLimit: number }): void {
  app.setErrorHandler((err, request, reply) => {
    let api = publicError(err, opts);
    if (!api) {
      opts.logger.error({ err, method: request.method, route: request.routeOptions.url, reqId: request.id }, 'request failed');
      api = new ApiError('internal', 'Internal server error: see the server log');
    } else if (api.code === 'internal') {
      opts.logger.error({ err, method: request.method, route: request.routeOptions.url, reqId: request.id }, 'request failed');
    }
    request.errorCode = api.code;
    void reply.code(api.status).headers(api.headers ?? {}).send(api.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const api = new ApiError('not_found', `Cannot find "${request.method} ${path.slice(0, 200)}": no such route`);
    request.errorCode = api.code;
    void reply.code(api.status).send(api.toBody());
  });
}

/** The raw HTTP answer to a request Node cannot even parse (bad header bytes, headers too large), still in the one error shape. */
export function clientErrorResponse(err: { code?: string }): string {
  const api =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new ApiError('too_large', 'Cannot read request: its headers are too large')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new ApiError('invalid', 'Cannot read request: it did not arrive in time')
        : new ApiError('invalid', 'Cannot read request: it is not valid HTTP');
  const body = JSON.stringify(api.toBody());
  return `HTTP/1.1 ${api.status} ${api.code === 'too_large' ? 'Payload Too Large' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** Answers unparseable requests with `clientErrorResponse` and drops the connection. */
export function onClientError(err: Error & { code?: string }, socket: { destroyed: boolean; writable: boolean; write(s: string): unknown; destroy(e?: Error): unknown }): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) socket.write(clientErrorResponse(err));
  socket.destroy(err);
}
