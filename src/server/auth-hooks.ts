import type { FastifyInstance, FastifyRequest } from 'fastify';
import { defaultProject, isKind, kindDef } from '../api/kinds.ts';
import type { AuthChain } from '../auth/chain.ts';
import type { Authorizer, Verb } from '../auth/authorizer.ts';
import './request-context.ts';

function headerText(v: string | string[] | undefined): string {
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

/** The project a request acts in, as the authorizer sees it; undefined for cluster-scoped kinds and "*". */
export function requestProject(request: FastifyRequest, resource: string): string | undefined {
  if (!isKind(resource) || kindDef(resource).scope !== 'project') return undefined;
  const body = request.body as { project?: unknown } | undefined;
  const query = request.query as { project?: unknown } | undefined;
  const project = (typeof body?.project === 'string' ? body.project : undefined) ?? (typeof query?.project === 'string' ? query.project : undefined);
  if (project === '*') return undefined;
  return project ?? defaultProject;
}

/**
 * Authenticates every request but the public routes (before the body is
 * read), then authorizes routes that name a resource: verb `read` for GET,
 * `write` otherwise. Routes without a resource (watch) authorize themselves.
 */
export function installAuth(app: FastifyInstance, deps: { auth: AuthChain; authorizer: Authorizer }): void {
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.public) return;
    request.identity = await deps.auth.authenticate({
      authorization: headerText(request.headers.authorization),
      method: request.method,
      path: request.url.split('?')[0] ?? '/',
      source: request.ip,
    });
  });
  app.addHook('preValidation', async (request) => {
    const { resource } = request.routeOptions.config;
    if (resource === undefined || !request.identity) return;
    const verb: Verb = request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write';
    deps.authorizer.authorize(request.identity, { verb, resource, project: requestProject(request, resource) });
  });
}
