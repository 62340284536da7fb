import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import type { Store } from '../../store/store.ts';
import type { ServerMetrics } from '../metrics.ts';
import { withErrors } from './route-schemas.ts';

/** `/healthz`, `/metrics` and `/v1/openapi.json`. */
export function registerSystemRoutes(app: FastifyInstance, deps: { store: Store; metrics: ServerMetrics }): void {
  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: { tags: ['system'], summary: 'Liveness: the server answers and its store is readable', security: [], response: withErrors({ 200: Type.Object({ status: Type.Literal('ok') }) }) },
    },
    async () => {
      try {
        await deps.store.revision();
      } catch (e) {
        throw new ApiError('unavailable', 'Store unavailable: cannot read the revision', { cause: e });
      }
      return { status: 'ok' };
    },
  );

  app.get(
    '/metrics',
    { config: { resource: 'metrics' }, schema: {
        tags: ['system'],
        summary: 'Prometheus metrics (text exposition format)',
        response: withErrors({ 200: { description: 'Prometheus text', content: { 'text/plain': { schema: Type.String() } } } as unknown as TSchema }),
      },
    },
    async (_request, reply) => {
      const text = await deps.metrics.registry.metrics();
      return reply.header('content-type', deps.metrics.registry.contentType).send(text);
    },
  );

  app.get(
    '/v1/openapi.json',
    { config: { public: true }, schema: { tags: ['system'], summary: 'This API as an OpenAPI 3.1 document', security: [], response: { 200: Type.Object({}, { additionalProperties: true }) } } },
    async () => app.swagger(),
  );
}
