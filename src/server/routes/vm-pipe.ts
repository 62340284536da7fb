import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ApiError, invalid } from '../../api/errors.ts';
import type { Authorizer } from '../../auth/authorizer.ts';
import type { Store } from '../../store/store.ts';
import type { TunnelRegistry } from '../tunnel/tunnel-registry.ts';
import { vmTarget } from '../tunnel/vm-target.ts';
import { IdParams, ProjectQuery, withErrors } from './route-schemas.ts';
import { requireVmWrite } from './vm-console.ts';

/** Largest single pipe write, decoded (the guest side's default request cap). */
export const maxPipeWriteBytes = 64 * 1024;

/** Bytes for or from the guest, base64. */
export const PipeData = Type.Object(
  { data: Type.String({ contentEncoding: 'base64', description: `the bytes, base64 (at most ${maxPipeWriteBytes} bytes per write)` }) },
  { additionalProperties: false },
);
export type PipeData = Static<typeof PipeData>;

const base64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The host side of the host↔guest pipe (the guest's side is
 * /crowd/v1/pipe/{read,write} of the metadata service), relayed over the
 * node's tunnel to the agent that holds the pipe. Reads consume what they
 * return and never wait: 204 when the guest wrote nothing.
 */
export function registerVmPipeRoutes(app: FastifyInstance, deps: { store: Store; tunnels: TunnelRegistry; authorizer: Authorizer }): void {
  const tags = ['vm'];
  const config = { resource: 'vm', kind: 'vm' };
  app.post<{ Params: { id: string }; Querystring: { project?: string }; Body: PipeData }>(
    '/v1/vms/:id/pipe',
    {
      config,
      schema: { tags, summary: 'Write bytes for the guest to read from its pipe', params: IdParams, querystring: ProjectQuery, body: PipeData, response: withErrors({ 204: Type.Null() }) },
    },
    async (request, reply) => {
      const { data } = request.body;
      if (data.length % 4 !== 0 || !base64.test(data)) throw invalid('/data', 'is not base64');
      const bytes = Buffer.from(data, 'base64');
      if (bytes.length > maxPipeWriteBytes) {
        throw new ApiError('too_large', `Cannot write ${bytes.length} bytes to the pipe: one write holds at most ${maxPipeWriteBytes} bytes`, {
          details: [{ path: '/data', message: `at most ${maxPipeWriteBytes} bytes` }],
        });
      }
      const { vm, tunnel } = await vmTarget(deps, request.params.id, request.query.project, 'write to the pipe of');
      await tunnel.request('pipe.write', vm.id, bytes);
      return reply.code(204).send();
    },
  );
  app.get<{ Params: { id: string }; Querystring: { project?: string } }>(
    '/v1/vms/:id/pipe',
    {
      config,
      preHandler: requireVmWrite(deps.authorizer),
      schema: {
        tags,
        summary: 'Take what the guest wrote to its pipe (consumed; 204 when empty)',
        params: IdParams,
        querystring: ProjectQuery,
        response: withErrors({ 200: PipeData, 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      const { vm, tunnel } = await vmTarget(deps, request.params.id, request.query.project, 'read the pipe of');
      const bytes = await tunnel.request('pipe.read', vm.id);
      if (!bytes || bytes.length === 0) return reply.code(204).send();
      return { data: bytes.toString('base64') };
    },
  );
}
