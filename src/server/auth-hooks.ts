import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../api/errors.ts';
import { defaultProject, isKind, kindDef } from '../api/kinds.ts';
import type { AnyObject } from '../api/object.ts';
import type { AuthRequest, Identity } from '../auth/authenticator.ts';
import type { AuthChain } from '../auth/chain.ts';
import type { Authorizer, Verb } from '../auth/authorizer.ts';
import { withMemberships, type ProjectMembers } from '../auth/project-members.ts';
import { failureKey, type RateLimiter } from '../auth/rate-limiter.ts';
import { roleIn, visibleProjects } from '../auth/role-authorizer.ts';
import { scopesAllow } from '../auth/scopes.ts';
import type { Store } from '../store/store.ts';
import './request-context.ts';

function headerText(v: string | string[] | undefined): string {
  return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
}

/** An object id as the store issues them (`vm_01J…`), as opposed to a name. */
const objectIdPattern = /^[a-z]+_[0-9A-HJKMNP-TV-Z]{26}$/;

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
 * Every project's role bindings, reread only after a project changed: a watch
 * of projects says when (every other write, a VM's status say, leaves the
 * cache as it is). Without a running watch it rereads on every call.
 */
class MembershipCache {
  private projects: ProjectMembers[] = [];
  /** Bumped by every project change (and by the watch ending); the cache is good while it equals `readAt`. */
  private changes = 0;
  private readAt = -1;
  private watching = false;

  constructor(
    private readonly store: Store,
    private readonly stop: AbortSignal,
  ) {}

  async get(): Promise<ProjectMembers[]> {
    if (this.watching && this.readAt === this.changes) return this.projects;
    const seen = this.changes;
    if (!this.watching && !this.stop.aborted) {
      this.watching = true;
      this.follow(await this.store.revision());
    }
    const out: ProjectMembers[] = [];
    let cont: string | undefined;
    do {
      const page = await this.store.list({ kind: 'project', limit: 1000, ...(cont ? { continue: cont } : {}) });
      for (const p of page.items) out.push({ name: p.name, members: (p.spec as Pick<ProjectMembers, 'members'>).members ?? {} });
      cont = page.continue;
    } while (cont);
    this.projects = out;
    this.readAt = seen;
    return out;
  }

  /** Counts project changes after `from` until the server stops; a failed watch only means rereading until the next call starts another. */
  private follow(from: number): void {
    void (async () => {
      try {
        for await (const ev of this.store.watch({ kinds: ['project'], fromRevision: from }, this.stop)) if (ev.type !== 'bookmark') this.changes++;
      } catch {
        // The store ended the watch (closed, or it fell behind): the next call reads again and watches anew.
      }
      this.watching = false;
      this.changes++;
    })();
  }
}

/** The project named by `/v1/projects/{id}`: ids are resolved to names; an unknown one stays as given (and matches no role). */
async function projectOfPath(store: Store, id: string): Promise<string> {
  if (!objectIdPattern.test(id)) return id;
  return store.get({ kind: 'project', idOrName: id }).then(
    (p) => p.name,
    () => id,
  );
}

/** Lists filtered after the handler: projects a caller may see, by name (`project` lists) or by the object's project. */
const listFilters = new WeakMap<FastifyRequest, (obj: AnyObject) => boolean>();

function isListRoute(request: FastifyRequest, resource: string): boolean {
  return request.method === 'GET' && isKind(resource) && request.routeOptions.url === `/v1/${kindDef(resource).plural}`;
}

/**
 * A by-id route of a project-scoped kind names a project in its query; the
 * object must live there, or it is not found (ids are global; history and old
 * revisions are looked up by id alone).
 */
async function checkIdInProject(store: Store, request: FastifyRequest, resource: string, project: string): Promise<void> {
  const id = (request.params as { id?: unknown } | undefined)?.id;
  if (typeof id !== 'string' || !objectIdPattern.test(id)) return;
  const found = await store.history({ kind: resource, project, idOrName: id }, { limit: 1 }).catch(() => undefined);
  const where = found?.items[0]?.object.project;
  if (where !== undefined && where !== project) throw new ApiError('not_found', `Cannot find ${resource} "${id}" in project "${project}"`);
}

export interface AuthHookDeps {
  auth: AuthChain;
  authorizer: Authorizer;
  store: Store;
  /** Failed-authentication limits per source and per user. */
  limiter: RateLimiter;
}

/**
 * Authorizes one request that names a resource: verb `read` for GET, `write`
 * otherwise, in the project the request acts in. Lists across projects are
 * narrowed to the caller's projects instead of refused.
 */
async function authorizeRequest(deps: AuthHookDeps, request: FastifyRequest, identity: Identity, resource: string): Promise<void> {
  const verb: Verb = request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write';
  const privileged = identity.clusterAdmin === true || identity.node !== undefined;
  if (resource === 'project') {
    const id = (request.params as { id?: unknown } | undefined)?.id;
    if (typeof id === 'string') return deps.authorizer.authorize(identity, { verb, resource, project: await projectOfPath(deps.store, id) });
    if (verb === 'read' && !privileged) {
      if (identity.scopes && !scopesAllow(identity.scopes, 'project', 'read')) deps.authorizer.authorize(identity, { verb, resource });
      listFilters.set(request, (p) => roleIn(identity, p.name) !== undefined);
      return;
    }
    return deps.authorizer.authorize(identity, { verb, resource });
  }
  const project = requestProject(request, resource);
  if (project === undefined && !privileged && isListRoute(request, resource) && kindDef(resource).scope === 'project') {
    const visible = visibleProjects(identity);
    if (visible === '*') return deps.authorizer.authorize(identity, { verb, resource, project: '*' });
    const first = visible[0];
    deps.authorizer.authorize(identity, { verb, resource, ...(first !== undefined ? { project: first } : {}) });
    const allowed = new Set(visible);
    listFilters.set(request, (o) => o.project !== undefined && allowed.has(o.project));
    return;
  }
  deps.authorizer.authorize(identity, { verb, resource, ...(project !== undefined ? { project } : {}) });
  if (project !== undefined && !identity.clusterAdmin && !identity.node) await checkIdInProject(deps.store, request, resource, project);
}

/** Watches authorize each kind in the route; project objects (role bindings of every project) are for cluster admins only. */
function checkWatch(request: FastifyRequest, identity: Identity): void {
  if (identity.clusterAdmin || identity.node) return;
  const kinds = (request.query as { kinds?: string } | undefined)?.kinds;
  const list = kinds === undefined || kinds.trim() === '' ? [] : kinds.split(',').map((k) => k.trim());
  if (list.length === 0 || list.includes('project')) {
    throw new ApiError('forbidden', 'Cannot watch projects: permission denied', {
      details: [{ path: 'kinds', message: 'name the kinds to watch; watching projects needs the cluster-admin role' }],
    });
  }
}

/**
 * Authenticates every request but the public routes (before the body is
 * read), limiting failed attempts per source and per user; adds the roles the
 * projects' `members` bindings give; then authorizes routes that name a
 * resource. Routes without a resource (watch, token routes) authorize
 * themselves.
 */
export function installAuth(app: FastifyInstance, deps: AuthHookDeps): void {
  const stop = new AbortController();
  app.addHook('onClose', async () => stop.abort());
  const memberships = new MembershipCache(deps.store, stop.signal);
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.public) return;
    const query = request.query as { project?: unknown } | undefined;
    const req: AuthRequest = {
      authorization: headerText(request.headers.authorization),
      method: request.method,
      path: request.url.split('?')[0] ?? '/',
      source: request.ip,
      ...(typeof query?.project === 'string' ? { project: query.project } : {}),
    };
    // A missing header is no guess: only wrong credentials count against the limits.
    const key = req.authorization === '' ? undefined : failureKey(req);
    if (key) deps.limiter.check(key);
    let identity: Identity;
    try {
      identity = await deps.auth.authenticate(req);
    } catch (e) {
      if (key) deps.limiter.fail(key);
      throw e;
    }
    request.identity = identity.clusterAdmin ? identity : withMemberships(identity, await memberships.get());
  });
  app.addHook('preValidation', async (request) => {
    const identity = request.identity;
    if (!identity) return;
    if (request.routeOptions.url === '/v1/watch') checkWatch(request, identity);
    const { resource } = request.routeOptions.config;
    if (resource !== undefined) await authorizeRequest(deps, request, identity, resource);
  });
  app.addHook('preSerialization', async (request, _reply, payload) => {
    const keep = listFilters.get(request);
    const list = payload as { items?: unknown } | null;
    if (!keep || !list || !Array.isArray(list.items)) return payload;
    return { ...list, items: (list.items as AnyObject[]).filter(keep) };
  });
}
