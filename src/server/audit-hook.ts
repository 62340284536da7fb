import type { FastifyInstance } from 'fastify';
import type { Clock } from '../base/clock.ts';
import type { Logger } from '../base/logger.ts';
import type { Store } from '../store/store.ts';
import './request-context.ts';

const mutating = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Writes every mutating request, failed ones included, to the audit log
 * before the answer leaves: who, through which authenticator, from where,
 * what, and the result. Never the Authorization header or a body.
 */
export function installAudit(app: FastifyInstance, deps: { store: Store; clock: Clock; logger: Logger }): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (!mutating.has(request.method)) return payload;
    const params = request.params as { id?: unknown } | undefined;
    const body = request.body as { name?: unknown } | undefined;
    const target = typeof params?.id === 'string' ? params.id : typeof body?.name === 'string' ? body.name : undefined;
    const kind = request.routeOptions.config.kind;
    try {
      await deps.store.appendAudit({
        time: new Date(deps.clock.now()).toISOString(),
        who: request.identity?.name ?? 'anonymous',
        ...(request.identity ? { authenticator: request.identity.authenticator } : {}),
        source: request.ip,
        method: request.method,
        path: (request.url.split('?')[0] ?? '/').slice(0, 1024),
        ...(kind ? { kind } : {}),
        ...(target ? { target: target.slice(0, 256) } : {}),
        status: reply.statusCode,
        result: request.errorCode ?? 'ok',
      });
    } catch (err) {
      deps.logger.error({ err, method: request.method, reqId: request.id }, 'cannot write audit entry');
    }
    return payload;
  });
}
