import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../api/errors.ts';
import { kindByPlural, kindDef } from '../api/kinds.ts';
import type { AnyObject } from '../api/object.ts';
import { listAll } from '../store/list-all.ts';
import type { Store } from '../store/store.ts';
import './request-context.ts';

/** Kinds a node may read when one of its VMs references them. */
const referencedKinds = new Set(['machine-type', 'image', 'network', 'firewall']);

function forbidden(node: string, what: string): ApiError {
  return new ApiError('forbidden', `Cannot ${what}: node "${node}" may only act on its own VMs and node`);
}

/** The VMs bound to a node, across projects. */
async function boundVms(store: Store, node: string): Promise<AnyObject[]> {
  return (await listAll(store, { kind: 'vm', project: '*', where: [{ path: 'status.node', value: node }] })).items;
}

/** Whether an object is one a VM of this node references. */
async function referencedByNode(store: Store, node: string, obj: AnyObject): Promise<boolean> {
  const target = kindDef(obj.kind);
  for (const vm of await boundVms(store, node)) {
    for (const r of kindDef('vm').references(vm.spec)) {
      if (r.kind !== obj.kind || r.name !== obj.name) continue;
      if (target.scope === 'cluster' || vm.project === obj.project) return true;
    }
  }
  return false;
}

function addWhere(request: FastifyRequest, node: string): void {
  const q = request.query as { where?: string[] };
  q.where = [...(q.where ?? []), `status.node=${node}`];
}

/**
 * The node authorizer: a host's credential may read only the VMs bound to its
 * node and the objects they reference (and download the images they use), write only those VMs' status and its
 * own node's status (and renew its own credential, read its own network view). Everything else is 403,
 * including listing other nodes. Lists and watches of VMs are narrowed to the
 * node's own by an added `status.node` filter.
 */
export async function checkNodeRequest(store: Store, node: string, request: FastifyRequest): Promise<void> {
  const url = request.routeOptions.url ?? '';
  const method = request.method;
  const what = `${method} ${url}`;
  if (method === 'GET' && url === '/v1/watch') {
    const q = request.query as { kinds?: string };
    if (q.kinds?.trim() !== 'vm') throw forbidden(node, 'watch anything but its VMs (kinds=vm)');
    return addWhere(request, node);
  }
  const m = /^\/v1\/([a-z-]+)(\/:id)?(\/[a-z]+)?$/.exec(url);
  const def = m ? kindByPlural(m[1]!) : undefined;
  if (!m || !def) throw forbidden(node, what);
  const [, , idPart, sub] = m;
  if (!idPart) {
    if (method === 'GET' && def.kind === 'vm') return addWhere(request, node);
    throw forbidden(node, `${method === 'GET' ? 'list' : 'create'} ${def.plural}`);
  }
  const id = (request.params as { id: string }).id;
  const project = (request.query as { project?: string }).project;
  const obj = await store
    .get(def.scope === 'project' ? { kind: def.kind, project: project ?? 'default', idOrName: id } : { kind: def.kind, idOrName: id })
    .catch(() => undefined);
  if (!obj) throw forbidden(node, what);
  const own =
    def.kind === 'vm'
      ? (obj.status as { node?: string }).node === node
      : def.kind === 'node'
        ? obj.name === node
        : referencedKinds.has(def.kind) && method === 'GET' && (!sub || (def.kind === 'image' && sub === '/content')) && (await referencedByNode(store, node, obj));
  if (!own) throw forbidden(node, what);
  if (method === 'GET' && (!sub || (def.kind === 'image' && sub === '/content'))) return;
  if (method === 'PUT' && sub === '/status') {
    const body = request.body as { node?: string } | undefined;
    if (def.kind === 'vm' && body?.node !== undefined && body.node !== node) throw forbidden(node, 'bind a VM to another node');
    return;
  }
  if (def.kind === 'node' && method === 'POST' && sub === '/credential') return;
  // Its own agent tunnel (WebSocket); another node's is refused above.
  if (def.kind === 'node' && method === 'GET' && sub === '/tunnel') return;
  if (def.kind === 'node' && method === 'GET' && sub === '/network') return;
  throw forbidden(node, what);
}

/** Runs the node authorizer on every request made with a node credential. */
export function installNodeAccess(app: FastifyInstance, store: Store): void {
  app.addHook('preHandler', async (request) => {
    const node = request.identity?.node;
    if (!node) return;
    if (request.identity?.renewalOnly && !isOwnRenewal(node, request)) throw new ApiError('unauthenticated', `Cannot ${request.method} ${request.routeOptions.url ?? request.url}: the credential of node "${node}" has expired; renew it first`);
    await checkNodeRequest(store, node, request);
  });
}

function isOwnRenewal(node: string, request: FastifyRequest): boolean {
  return request.method === 'POST' && request.routeOptions.url === '/v1/nodes/:id/credential' && (request.params as { id?: string }).id === node;
}
