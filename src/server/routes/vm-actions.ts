import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import { defaultProject, kindDef } from '../../api/kinds.ts';
import type { AnyObject } from '../../api/object.ts';
import type { Store } from '../../store/store.ts';
import type { TunnelRegistry } from '../tunnel/tunnel-registry.ts';
import { vmTarget } from '../tunnel/vm-target.ts';
import { IdParams, ProjectQuery, withErrors } from './route-schemas.ts';
import { sendObject, writeMeta } from './write-meta.ts';

/** The answer to an action the agent accepted and now carries out. */
export const VmActionAccepted = Type.Object({
  action: Type.Union([Type.Literal('reboot'), Type.Literal('reset')]),
  vm: Type.String(),
  node: Type.String(),
});

/** Rereads and retries a power change this often when a concurrent write wins. */
const attempts = 5;

async function setPower(store: Store, ref: { project: string; idOrName: string }, power: 'running' | 'stopped', meta: ReturnType<typeof writeMeta>): Promise<AnyObject> {
  for (let i = 1; ; i++) {
    const cur = await store.get({ kind: 'vm', ...ref });
    try {
      const input = { labels: cur.labels ?? {}, metadata: cur.metadata ?? {}, spec: { ...cur.spec, power } };
      return await store.update({ kind: 'vm', ...ref }, input, { ...meta, ifRevision: meta.ifRevision ?? cur.revision });
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'precondition_failed') || meta.ifRevision !== undefined || i >= attempts) throw e;
    }
  }
}

/**
 * VM actions that are not state, as sub-resources: reboot and reset travel
 * over the node's tunnel and answer 202 once the agent accepted them (the VM
 * is running there); start and stop set `spec.power` like a PATCH would.
 */
export function registerVmActionRoutes(app: FastifyInstance, deps: { store: Store; tunnels: TunnelRegistry }): void {
  const tags = ['vm'];
  const config = { resource: 'vm', kind: 'vm' };
  for (const action of ['reboot', 'reset'] as const) {
    app.post<{ Params: { id: string }; Querystring: { project?: string } }>(
      `/v1/vms/:id/${action}`,
      {
        config,
        schema: {
          tags,
          summary: action === 'reboot' ? 'Reboot a VM: a graceful stop, then a fresh start on its node' : 'Reset a VM: a hardware reset of the running guest',
          params: IdParams,
          querystring: ProjectQuery,
          response: withErrors({ 202: VmActionAccepted }),
        },
      },
      async (request, reply) => {
        const { vm, tunnel } = await vmTarget(deps, request.params.id, request.query.project, action);
        await tunnel.request(action, vm.id);
        return reply.code(202).send({ action, vm: vm.name, node: tunnel.node });
      },
    );
  }
  for (const [action, power] of [
    ['start', 'running'],
    ['stop', 'stopped'],
  ] as const) {
    app.post<{ Params: { id: string }; Querystring: { project?: string } }>(
      `/v1/vms/:id/${action}`,
      {
        config,
        schema: { tags, summary: `Set a VM's spec.power to "${power}"`, params: IdParams, querystring: ProjectQuery, response: withErrors({ 200: Type.Ref(kindDef('vm').read) }) },
      },
      async (request, reply) => {
        const ref = { project: request.query.project ?? defaultProject, idOrName: request.params.id };
        return sendObject(reply, await setPower(deps.store, ref, power, writeMeta(request)));
      },
    );
  }
}
