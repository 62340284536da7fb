import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import { systemClock } from '../../base/clock.ts';
import type { Logger } from '../../base/logger.ts';
import type { Store } from '../../store/store.ts';
import { IdParams, withErrors } from '../routes/route-schemas.ts';
import { NetworkViews } from './network-views.ts';

/**
 * `GET /v1/nodes/:id/network`: the node's network view (the node itself, or
 * an admin), served from cached views that start with the first request and
 * stop when the app closes.
 */
export function hostNetworkRoutes(store: () => Store): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const stop = new AbortController();
    let views: NetworkViews | undefined;
    let running: Promise<void> | undefined;
    app.addHook('onClose', async () => {
      stop.abort();
      await running;
    });
    app.get<{ Params: { id: string } }>(
      '/v1/nodes/:id/network',
      { config: { resource: 'node', kind: 'node' }, schema: { tags: ['node'], summary: "A node's view of the networks its VMs use", params: IdParams, response: withErrors({ 200: Type.Unknown() }) } },
      async (request, reply) => {
        const node = await store().get({ kind: 'node', idOrName: request.params.id }).catch(() => undefined);
        if (!node) throw new ApiError('not_found', `Cannot find node "${request.params.id}"`);
        if (!views) {
          views = new NetworkViews({ store: store(), logger: app.log as Logger, clock: systemClock });
          running = views.run(stop.signal);
        }
        return reply.type('application/json; charset=utf-8').send(await views.json(node.name));
      },
    );
  };
}
