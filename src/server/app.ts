import { setMaxListeners } from 'node:events';
import swagger from '@fastify/swagger';
import type { TSchema } from '@sinclair/typebox';
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { ApiError } from '../api/errors.ts';
import { kinds } from '../api/kinds.ts';
import type { AuthChain } from '../auth/chain.ts';
import type { Authorizer } from '../auth/authorizer.ts';
import { RateLimiter } from '../auth/rate-limiter.ts';
import type { ScopedTokenAuthenticator } from '../auth/scoped-token.ts';
import { systemClock, type Clock } from '../base/clock.ts';
import type { Logger } from '../base/logger.ts';
import type { Store } from '../store/store.ts';
import { installAudit } from './audit-hook.ts';
import { installAuth } from './auth-hooks.ts';
import { installErrorBoundary, onClientError } from './errors.ts';
import { ServerMetrics } from './metrics.ts';
import { installNodeAccess } from './node-access.ts';
import { registerAuditRoute } from './routes/audit.ts';
import { registerHistoryRoutes } from './routes/history.ts';
import { registerObjectRoutes } from './routes/objects.ts';
import { SecretKeeper } from './secrets/secret-keeper.ts';
import { roleRoutes } from './routes/roles.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { totpRoutes, type TotpEnrolmentState } from './routes/totp.ts';
import { ErrorSchema } from './routes/route-schemas.ts';
import { registerSystemRoutes } from './routes/system.ts';
import { registerWatchRoute } from './routes/watch.ts';
import type { TunnelRegistry } from './tunnel/tunnel-registry.ts';
import { registerTunnelRoutes } from './tunnel/tunnel-route.ts';
import { registerWebSockets } from './tunnel/websocket-plugin.ts';
import { typeboxValidatorCompiler } from './validator.ts';

/** Everything the HTTP server needs, built by main.ts (or a test) and handed in. */
export interface AppDeps {
  store: Store;
  auth: AuthChain;
  authorizer: Authorizer;
  /** Failed-authentication limits (default: 20 at once then 10/min per source, 10 then 5/min per user). */
  limiter?: RateLimiter;
  /** Serve the scoped-token and role-binding routes; `scoped` mints (absent: minting is refused); `totp` (the chain's TOTP state) adds TOTP enrolment. */
  accounts?: { scoped?: ScopedTokenAuthenticator; totp?: TotpEnrolmentState };
  logger: Logger;
  clock?: Clock;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** How often a quiet watch stream gets a bookmark (default 5 s: agents take 12 s of silence for a dead link). */
  watchBookmarkMs?: number;
  /** PEM certificate and key: serve HTTPS. */
  https?: { cert: string; key: string };
  /** Agent tunnels: with it, agents connect at /v1/nodes/{name}/tunnel and VMs get console, reboot/reset and pipe routes. */
  tunnels?: TunnelRegistry;
  /** More routes (e.g. the image repository), registered after the core ones so they share hooks and the error boundary. */
  plugins?: FastifyPluginAsync[];
}

export const defaultBodyLimit = 1024 * 1024;

/** Builds the API server from its dependencies; nothing global, so tests build as many as they like. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const bodyLimit = deps.bodyLimit ?? defaultBodyLimit;
  const clock = deps.clock ?? systemClock;
  const app = Fastify({
    loggerInstance: deps.logger,
    // Access logs cost every request; errors are logged by the error boundary.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    routerOptions: { maxParamLength: 256 },
    // While closing, requests get `unavailable` from the hook below, in the one error shape.
    return503OnClosing: false,
    // Idle keep-alive connections would hold shutdown for the keep-alive timeout; in-flight writes are durable or not, never half-done.
    forceCloseConnections: true,
    clientErrorHandler: onClientError,
    ...(deps.https ? { https: deps.https } : {}),
    // Validation runs through TypeBox (validator.ts); this keeps ajv strict too should anything fall back to it.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
  }) as unknown as FastifyInstance;

  const shared = new Map<string, TSchema>();
  const share = (schema: TSchema) => {
    shared.set(schema.$id!, schema);
    app.addSchema(schema);
  };
  share(ErrorSchema);
  for (const def of kinds) for (const s of [def.read, def.create, def.update]) share(s);
  app.setValidatorCompiler(typeboxValidatorCompiler(shared));
  // Response schemas document the API; answers are plain JSON, never filtered by a serializer.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  // Bodies are JSON only: text/plain gets `invalid` (unsupported media type) instead of reaching a handler as a string.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/merge-patch+json', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'crowdcloud', version: 'v1', description: 'Secure, lightweight manager for virtual machines. Errors: {"error": {code, message, details}}.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  if (deps.tunnels) await registerWebSockets(app);

  const metrics = new ServerMetrics(deps.store);
  const shutdown = new AbortController();
  setMaxListeners(0, shutdown.signal); // every open watch listens for shutdown
  app.addHook('preClose', async () => shutdown.abort());
  app.addHook('onResponse', async (request, reply) => {
    metrics.observe(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });
  installErrorBoundary(app, { logger: deps.logger, bodyLimit });
  app.addHook('onRequest', async () => {
    if (shutdown.signal.aborted) {
      throw new ApiError('unavailable', 'Cannot handle request: the server is shutting down', { headers: { connection: 'close', 'retry-after': '1' } });
    }
  });
  installAuth(app, { auth: deps.auth, authorizer: deps.authorizer, store: deps.store, limiter: deps.limiter ?? new RateLimiter({ clock }) });
  installNodeAccess(app, deps.store);
  installAudit(app, { store: deps.store, clock, logger: deps.logger });

  registerSystemRoutes(app, { store: deps.store, metrics });
  registerAuditRoute(app, { store: deps.store });
  if (deps.accounts) {
    const { scoped } = deps.accounts;
    await app.register(tokenRoutes({ store: deps.store, authorizer: deps.authorizer, clock, ...(scoped ? { scoped } : {}) }));
    await app.register(roleRoutes({ store: deps.store, authorizer: deps.authorizer }));
    if (deps.accounts.totp) await app.register(totpRoutes({ state: deps.accounts.totp, clock }));
  }
  registerWatchRoute(app, {
    store: deps.store,
    authorizer: deps.authorizer,
    clock,
    logger: deps.logger,
    bookmarkMs: deps.watchBookmarkMs ?? 5_000,
    shutdown: shutdown.signal,
    watchers: metrics.watchers,
  });
  // Secret parameters need an agent to receive them: kept in memory only where agents connect.
  const secrets = deps.tunnels ? new SecretKeeper({ store: deps.store, tunnels: deps.tunnels, clock, logger: deps.logger }) : undefined;
  if (secrets) {
    const delivering = secrets.run(shutdown.signal).catch((e: unknown) => deps.logger.error({ err: e instanceof Error ? e.message : String(e) }, 'secret delivery stopped'));
    app.addHook('onClose', async () => void (await delivering));
  }
  for (const def of kinds) {
    registerObjectRoutes(app, def, { store: deps.store, ...(secrets ? { secrets } : {}) });
    registerHistoryRoutes(app, def, { store: deps.store });
  }
  if (deps.tunnels) registerTunnelRoutes(app, { store: deps.store, authorizer: deps.authorizer, tunnels: deps.tunnels });
  for (const plugin of deps.plugins ?? []) await app.register(plugin);
  await app.ready();
  return app;
}
