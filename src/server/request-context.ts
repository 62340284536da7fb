import type { ErrorCode } from '../api/errors.ts';
import type { Identity } from '../auth/authenticator.ts';

/** What the server's hooks attach to each request and route; declared once so every route sees the same shape. */
declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook; absent on public routes and failed authentication. */
    identity?: Identity;
    /** The error code answered, for the audit log and metrics. */
    errorCode?: ErrorCode;
  }
  interface FastifyContextConfig {
    /** Reachable without credentials (/healthz, /v1/openapi.json). */
    public?: boolean;
    /** What the authorizer is asked about: a kind, or "audit", "metrics", "watch". */
    resource?: string;
    /** The object kind of the route, for the audit log. */
    kind?: string;
  }
}

export {};
