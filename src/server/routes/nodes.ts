import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { EnrolRequest, JoinToken, JoinTokenCreate, NodeCredential } from '../../api/enrolment.ts';
import type { Enrolment } from '../enrolment.ts';
import { IdParams, withErrors } from './route-schemas.ts';

/**
 * Host identity routes: join tokens (admins), enrolment (public: the join
 * token in the body is the credential), credential renewal (the node itself)
 * and revocation (admins).
 */
export function nodeRoutes(enrolment: Enrolment): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const tags = ['node'];
    app.post<{ Body: JoinTokenCreate }>(
      '/v1/nodes/join-tokens',
      { config: { resource: 'node', kind: 'node' }, schema: { tags, summary: 'Make a one-time join token for a host', body: JoinTokenCreate, response: withErrors({ 201: JoinToken }) } },
      async (request, reply) => reply.code(201).send(await enrolment.createJoinToken(request.body, request.identity!.name)),
    );
    app.post<{ Body: EnrolRequest }>(
      '/v1/nodes/enrol',
      { config: { public: true, kind: 'node' }, schema: { tags, summary: 'Enrol a host with a join token', security: [], body: EnrolRequest, response: withErrors({ 201: NodeCredential }) } },
      async (request, reply) => reply.code(201).send(await enrolment.enrol(request.body)),
    );
    app.post<{ Params: { id: string } }>(
      '/v1/nodes/:id/credential',
      { config: { resource: 'node', kind: 'node' }, schema: { tags, summary: "Renew a node's credential (the node itself)", params: IdParams, response: withErrors({ 200: NodeCredential }) } },
      async (request) => enrolment.renew(request.params.id),
    );
    app.post<{ Params: { id: string } }>(
      '/v1/nodes/:id/revoke',
      { config: { resource: 'node', kind: 'node' }, schema: { tags, summary: "Revoke a node's credentials (touches no other node)", params: IdParams, response: withErrors({ 200: Type.Unknown() }) } },
      async (request) => enrolment.revoke(request.params.id, request.identity!.name),
    );
  };
}
