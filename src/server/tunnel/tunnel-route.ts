import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import type { Authorizer } from '../../auth/authorizer.ts';
import type { Store } from '../../store/store.ts';
import { IdParams } from '../routes/route-schemas.ts';
import { registerVmActionRoutes } from '../routes/vm-actions.ts';
import { registerVmConsoleRoutes } from '../routes/vm-console.ts';
import { registerVmPipeRoutes } from '../routes/vm-pipe.ts';
import '../request-context.ts';
import type { TunnelRegistry } from './tunnel-registry.ts';

/** The tunnel route and every route that travels over tunnels (console, reboot/reset, pipe), sharing one registry. */
export function registerTunnelRoutes(app: FastifyInstance, deps: { store: Store; authorizer: Authorizer; tunnels: TunnelRegistry }): void {
  const { tunnels } = deps;
  app.addHook('preClose', async () => tunnels.closeAll());
  registerTunnelRoute(app, { tunnels });
  registerVmActionRoutes(app, { store: deps.store, tunnels });
  registerVmConsoleRoutes(app, { store: deps.store, tunnels, authorizer: deps.authorizer });
  registerVmPipeRoutes(app, { store: deps.store, tunnels, authorizer: deps.authorizer });
}

/**
 * `GET /v1/nodes/{name}/tunnel` (WebSocket): the one connection an agent
 * opens out to the server; console, actions and the guest pipe travel over
 * it. Only the node's own credential may open it (the node authorizer also
 * refuses other nodes; this refuses users, who are not agents).
 */
export function registerTunnelRoute(app: FastifyInstance, deps: { tunnels: TunnelRegistry }): void {
  app.get<{ Params: { id: string } }>(
    '/v1/nodes/:id/tunnel',
    {
      websocket: true,
      config: { resource: 'node', kind: 'node' },
      schema: { params: IdParams },
      preHandler: async (request) => {
        const node = request.params.id;
        if (request.identity?.node !== node) {
          throw new ApiError('forbidden', `Cannot open the tunnel of node "${node}": only that node's own credential may`);
        }
      },
    },
    (socket, request) => {
      deps.tunnels.attach(request.params.id, socket);
    },
  );
}
