import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Duplex } from 'node:stream';
import type { Authorizer } from '../../auth/authorizer.ts';
import { requestProject } from '../auth-hooks.ts';
import type { Store } from '../../store/store.ts';
import type { TunnelRegistry } from '../tunnel/tunnel-registry.ts';
import { vmTarget } from '../tunnel/vm-target.ts';
import { IdParams, ProjectQuery, withErrors } from './route-schemas.ts';
import { Type } from '@sinclair/typebox';

type Req = FastifyRequest<{ Params: { id: string }; Querystring: { project?: string } }>;

/** Console streams opened before the upgrade, so a refusal is still a plain HTTP error. */
const opened = new WeakMap<FastifyRequest, Duplex>();

/** Typing into a console acts on the guest: the caller needs write access to the VM, not just read. */
export function requireVmWrite(authorizer: Authorizer): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    if (request.identity) authorizer.authorize(request.identity, { verb: 'write', resource: 'vm', project: requestProject(request, 'vm') });
  };
}

/**
 * `GET /v1/vms/{id}/console` (WebSocket): the VM's serial console, relayed
 * over its node's tunnel; binary or text messages go to the guest, its output
 * comes back as binary messages; closing the socket detaches. `GET
 * /v1/vms/{id}/console/log`: the recent console output (bounded) as text.
 */
export function registerVmConsoleRoutes(app: FastifyInstance, deps: { store: Store; tunnels: TunnelRegistry; authorizer: Authorizer }): void {
  const tags = ['vm'];
  const config = { resource: 'vm', kind: 'vm' };
  const writeAccess = requireVmWrite(deps.authorizer);
  app.get<{ Params: { id: string }; Querystring: { project?: string } }>(
    '/v1/vms/:id/console',
    {
      websocket: true,
      config,
      schema: { params: IdParams, querystring: ProjectQuery },
      preHandler: async (request: Req) => {
        await writeAccess(request);
        const { vm, tunnel } = await vmTarget(deps, request.params.id, request.query.project, 'attach to the console of');
        const stream = await tunnel.openConsole(vm.id);
        opened.set(request, stream);
        request.log.info({ vm: vm.name, project: vm.project, node: tunnel.node, who: request.identity?.name }, 'console attached');
        // However the connection ends (upgraded or not), the host's console is released.
        request.raw.socket.once('close', () => stream.destroy());
      },
    },
    (socket, request) => {
      const stream = opened.get(request);
      if (!stream) return socket.close(1011, 'the console is not open');
      stream.on('data', (chunk: Buffer) => socket.send(chunk, { binary: true }));
      stream.on('end', () => socket.close(1000, 'the console closed'));
      stream.on('error', () => socket.close(1011, 'the console failed'));
      socket.on('message', (data: Buffer) => stream.write(data));
      socket.on('close', () => stream.destroy());
    },
  );
  app.get<{ Params: { id: string }; Querystring: { project?: string } }>(
    '/v1/vms/:id/console/log',
    {
      config,
      schema: {
        tags,
        summary: "The VM's recent serial console output (bounded), as text",
        params: IdParams,
        querystring: ProjectQuery,
        response: withErrors({ 200: Type.String() }),
      },
    },
    async (request, reply) => {
      const { vm, tunnel } = await vmTarget(deps, request.params.id, request.query.project, 'read the console log of');
      const log = (await tunnel.request('console.log', vm.id)) ?? Buffer.alloc(0);
      return reply.type('text/plain; charset=utf-8').send(log.toString('utf8'));
    },
  );
}
