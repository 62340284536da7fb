import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import { projectKind } from '../../api/kinds/project.ts';
import type { AnyObject } from '../../api/object.ts';
import type { Authorizer } from '../../auth/authorizer.ts';
import type { Store } from '../../store/store.ts';
import { withErrors } from './route-schemas.ts';
import { sendObject, writeMeta } from './write-meta.ts';
import '../request-context.ts';

export const MemberParams = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128, description: 'the project (id or name)' }),
    member: Type.String({ minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f]+$', description: 'a user name, or "group:<name>"' }),
  },
  { additionalProperties: false },
);
type MemberParams = Static<typeof MemberParams>;

export const RoleBinding = Type.Object(
  { role: Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]) },
  { additionalProperties: false },
);
type RoleBinding = Static<typeof RoleBinding>;

/** The project of the path, after checking the caller may change its role bindings (its admins and cluster admins). */
async function projectFor(store: Store, authorizer: Authorizer, request: FastifyRequest<{ Params: MemberParams }>): Promise<AnyObject> {
  const project = await store.get({ kind: 'project', idOrName: request.params.id }).catch(() => undefined);
  // An unknown project and a forbidden one look the same to non-admins.
  authorizer.authorize(request.identity!, { verb: 'write', resource: 'role', project: project?.name ?? request.params.id });
  if (!project) throw new ApiError('not_found', `Cannot find project "${request.params.id}"`);
  return project;
}

/**
 * Role bindings kept in a project's `spec.members`: `PUT
 * /v1/projects/{id}/members/{member}` binds a user or `group:<name>` to a
 * role, `DELETE` unbinds. Project admins manage their own project's bindings.
 */
export function roleRoutes(deps: { store: Store; authorizer: Authorizer }): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const { store, authorizer } = deps;
    const tags = ['project'];
    const write = async (request: FastifyRequest<{ Params: MemberParams }>, role: RoleBinding['role'] | undefined): Promise<AnyObject> => {
      const project = await projectFor(store, authorizer, request);
      const spec = project.spec as { members?: Record<string, string> };
      const members = { ...spec.members };
      if (role) members[request.params.member] = role;
      else if (members[request.params.member] === undefined) throw new ApiError('not_found', `Cannot unbind "${request.params.member}": it has no role in project "${project.name}"`);
      else delete members[request.params.member];
      const meta = { ...writeMeta(request), ifRevision: project.revision };
      return store.update({ kind: 'project', idOrName: project.id }, { labels: project.labels, metadata: project.metadata, spec: { ...spec, members } }, meta);
    };
    app.put<{ Params: MemberParams; Body: RoleBinding }>(
      '/v1/projects/:id/members/:member',
      { config: { kind: 'project' }, schema: { tags, summary: 'Bind a user or group to a role in a project', params: MemberParams, body: RoleBinding, response: withErrors({ 200: Type.Ref(projectKind.read) }) } },
      async (request, reply) => sendObject(reply, await write(request, request.body.role)),
    );
    app.delete<{ Params: MemberParams }>(
      '/v1/projects/:id/members/:member',
      { config: { kind: 'project' }, schema: { tags, summary: 'Remove a user or group’s role in a project', params: MemberParams, response: withErrors({ 200: Type.Ref(projectKind.read) }) } },
      async (request, reply) => sendObject(reply, await write(request, undefined)),
    );
  };
}
