import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ApiError, invalid } from '../../api/errors.ts';
import { parseFieldFilter } from '../../api/field-filter.ts';
import type { KindDef } from '../../api/kind.ts';
import { defaultProject } from '../../api/kinds.ts';
import type { AnyObject, Labels, Metadata } from '../../api/object.ts';
import { parseSelector } from '../../api/selector.ts';
import { ObjectList } from '../../api/wire.ts';
import type { ObjectRef, Store, StoredObject, UpdateInput } from '../../store/store.ts';
import { mergePatch } from '../merge-patch.ts';
import { SecretParameters } from '../../api/kinds/vm.ts';
import { carriesMark, readsPrivate, redactJson, restorePrivate } from '../secrets/private-parameters.ts';
import type { SecretKeeper } from '../secrets/secret-keeper.ts';
import { GetQuery, IdParams, ListQuery, PatchBody, ProjectQuery, withErrors } from './route-schemas.ts';
import { explainStale, sendObject, writeMeta } from './write-meta.ts';

type Params = Static<typeof IdParams>;
type Query = Static<typeof ProjectQuery>;

/** A list page's JSON with each object's stored text spliced in as is. */
export function storedPage(page: ObjectList<StoredObject>): string {
  const next = page.continue === undefined ? '' : `,"continue":${JSON.stringify(page.continue)}`;
  return `{"items":[${page.items.map((o) => o.json).join(',')}],"revision":${page.revision}${next}}`;
}

/** Names the object of a route: cluster-scoped kinds have no project. */
export function objectRef(def: KindDef, id: string, project: string | undefined): ObjectRef {
  return def.scope === 'project' ? { kind: def.kind, project: project ?? defaultProject, idOrName: id } : { kind: def.kind, idOrName: id };
}

/** Rereads and retries a merge patch this often when a concurrent write wins and the client gave no If-Match. */
const patchAttempts = 5;

/** Read-only fields a PUT body may repeat; each must equal the object's. */
const readOnlyFields = ['id', 'name', 'project', 'createdAt', 'updatedAt', 'updatedBy'] as const;
/** Of those, the ones every write changes: a mismatch means the body is stale, not wrong. */
const perRevisionFields = new Set<string>(['updatedAt', 'updatedBy']);

function checkReadOnly(body: Record<string, unknown>, current: AnyObject, ifRevision: number | undefined, stalePath: string): void {
  if (ifRevision !== undefined && ifRevision !== current.revision) {
    throw new ApiError('precondition_failed', `Cannot change ${current.kind} "${current.name}": it is at revision ${current.revision}, not ${ifRevision}`, {
      details: [{ path: stalePath, message: 'the object changed after this revision' }],
    });
  }
  for (const field of readOnlyFields) {
    if (body[field] === undefined || body[field] === current[field]) continue;
    if (perRevisionFields.has(field)) {
      throw new ApiError('precondition_failed', `Cannot change ${current.kind} "${current.name}": it changed after this copy was read`, {
        details: [{ path: `/${field}`, message: `the object was updated at revision ${current.revision}` }],
      });
    }
    throw invalid(`/${field}`, `is read-only and must equal "${String(current[field])}"`);
  }
}

/** A VM's merge patch may carry write-only secret parameters beside labels, metadata and spec. */
const VmPatchBody = Type.Object({ ...PatchBody.properties, secretParameters: Type.Optional(SecretParameters) }, { additionalProperties: false, description: PatchBody.description });

/** Takes a VM body's secret parameters out of it, so nothing after this can store them; refused where no agent can receive them. */
function takeSecrets(def: KindDef, body: Record<string, unknown>, secrets: SecretKeeper | undefined): SecretParameters | undefined {
  if (def.kind !== 'vm' || body.secretParameters === undefined) return undefined;
  const params = body.secretParameters as SecretParameters;
  delete body.secretParameters;
  if (!secrets) throw invalid('/secretParameters', 'cannot be delivered: this server runs without agent tunnels');
  return params;
}

/** List, create, get, replace, patch, delete and status routes of one kind; `secrets` keeps a VM's secret parameters until its host has them. */
export function registerObjectRoutes(app: FastifyInstance, def: KindDef, deps: { store: Store; secrets?: SecretKeeper }): void {
  const { store, secrets } = deps;
  const kept = async (obj: AnyObject, params: SecretParameters | undefined): Promise<AnyObject> => (params && secrets ? secrets.keep(obj, params) : obj);
  const base = `/v1/${def.plural}`;
  const tags = [def.kind];
  const config = { resource: def.kind, kind: def.kind };
  const read = Type.Ref(def.read);

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    base,
    {
      config,
      schema: { tags, summary: `List ${def.plural}`, querystring: ListQuery, response: withErrors({ 200: ObjectList }) },
      // Pages leave as the stored text; the access filter (preSerialization) still sees each item's name and project.
      serializerCompiler: ({ httpStatus }) => (httpStatus === '200' ? (page: ObjectList<StoredObject>) => storedPage(page) : (data: unknown) => JSON.stringify(data)),
    },
    async (request) => {
      const q = request.query;
      const list = await store.listStored({
        kind: def.kind,
        project: def.scope === 'project' ? (q.project ?? defaultProject) : undefined,
        selector: q.selector === undefined ? undefined : parseSelector(q.selector),
        where: q.where?.map(parseFieldFilter),
        limit: q.limit,
        continue: q.continue,
      });
      return readsPrivate(request.identity) ? list : { ...list, items: list.items.map((o) => ({ ...o, json: redactJson(o.json) })) };
    },
  );

  app.post<{ Querystring: Query; Body: Record<string, unknown> }>(
    base,
    { config, schema: { tags, summary: `Create a ${def.kind}`, querystring: ProjectQuery, body: Type.Ref(def.create), response: withErrors({ 201: read }) } },
    async (request, reply) => {
      const body = request.body;
      const meta = writeMeta(request);
      const params = takeSecrets(def, body, secrets);
      let project: string | undefined;
      if (def.scope === 'project') {
        project = (body.project as string | undefined) ?? request.query.project ?? defaultProject;
        if (request.query.project !== undefined && project !== request.query.project) {
          throw invalid('/project', `differs from the query parameter project "${request.query.project}"`);
        }
      } else if (body.project !== undefined) {
        throw invalid('/project', `kind "${def.kind}" is cluster-scoped and has no project`);
      }
      const obj = await store.create(
        {
          kind: def.kind,
          project,
          name: body.name as string,
          labels: body.labels as Labels | undefined,
          metadata: body.metadata as Metadata | undefined,
          spec: restorePrivate(def.kind, body.spec as Record<string, unknown>, undefined),
        },
        meta,
      );
      return sendObject(reply.header('location', `${base}/${obj.id}`), await kept(obj, params), 201);
    },
  );

  app.get<{ Params: Params; Querystring: Static<typeof GetQuery> }>(
    `${base}/:id`,
    { config, schema: { tags, summary: `Get a ${def.kind}`, params: IdParams, querystring: GetQuery, response: withErrors({ 200: read }) } },
    async (request, reply) => {
      const ref = objectRef(def, request.params.id, request.query.project);
      const obj = await store.get(ref, request.query.revision === undefined ? undefined : { atRevision: request.query.revision });
      return sendObject(reply, obj);
    },
  );

  app.put<{ Params: Params; Querystring: Query; Body: Record<string, unknown> }>(
    `${base}/:id`,
    {
      config,
      schema: { tags, summary: `Replace a ${def.kind}'s labels, metadata and spec`, params: IdParams, querystring: ProjectQuery, body: Type.Ref(def.update), response: withErrors({ 200: read }) },
    },
    async (request, reply) => {
      const body = request.body;
      const params = takeSecrets(def, body, secrets);
      const ref = objectRef(def, request.params.id, request.query.project);
      const meta = writeMeta(request);
      const bodyRevision = body.revision as number | undefined;
      if (bodyRevision !== undefined && meta.ifRevision !== undefined && bodyRevision !== meta.ifRevision) {
        throw invalid('/revision', `differs from the If-Match header "${meta.ifRevision}"`);
      }
      meta.ifRevision ??= bodyRevision;
      const stalePath = request.headers['if-match'] !== undefined || bodyRevision === undefined ? 'If-Match' : '/revision';
      const spec = body.spec as Record<string, unknown>;
      const keepsPrivate = carriesMark(def.kind, spec);
      let current: AnyObject | undefined;
      if (keepsPrivate || readOnlyFields.some((f) => body[f] !== undefined)) {
        current = await store.get(ref);
        checkReadOnly(body, current, meta.ifRevision, stalePath);
        // The comparison (and the private values kept) hold only for the version just read.
        meta.ifRevision ??= current.revision;
      }
      const input: UpdateInput = {
        labels: (body.labels as Labels | undefined) ?? {},
        metadata: (body.metadata as Metadata | undefined) ?? {},
        spec: keepsPrivate ? restorePrivate(def.kind, spec, current!.spec) : spec,
      };
      return sendObject(reply, await kept(await store.update(ref, input, meta).catch(explainStale(stalePath)), params));
    },
  );

  app.patch<{ Params: Params; Querystring: Query; Body: Static<typeof PatchBody> }>(
    `${base}/:id`,
    {
      config,
      schema: {
        tags,
        summary: `Merge-patch a ${def.kind}'s labels, metadata and spec`,
        consumes: ['application/merge-patch+json', 'application/json'],
        params: IdParams,
        querystring: ProjectQuery,
        body: def.kind === 'vm' ? VmPatchBody : PatchBody,
        response: withErrors({ 200: read }),
      },
    },
    async (request, reply) => {
      const ref = objectRef(def, request.params.id, request.query.project);
      const meta = writeMeta(request);
      const patch = request.body;
      const params = takeSecrets(def, patch, secrets);
      for (let attempt = 1; ; attempt++) {
        const current = await store.get(ref);
        const merged = mergePatch({ labels: current.labels, metadata: current.metadata, spec: current.spec }, patch) as Partial<UpdateInput>;
        const input: UpdateInput = { labels: merged.labels ?? {}, metadata: merged.metadata ?? {}, spec: restorePrivate(def.kind, merged.spec ?? {}, current.spec) };
        try {
          return sendObject(reply, await kept(await store.update(ref, input, { ...meta, ifRevision: meta.ifRevision ?? current.revision }), params));
        } catch (e) {
          const retry = e instanceof ApiError && e.code === 'precondition_failed' && meta.ifRevision === undefined && attempt < patchAttempts;
          if (!retry) explainStale('If-Match')(e);
        }
      }
    },
  );

  app.delete<{ Params: Params; Querystring: Query }>(
    `${base}/:id`,
    { config, schema: { tags, summary: `Delete a ${def.kind}; answers with its last version`, params: IdParams, querystring: ProjectQuery, response: withErrors({ 200: read }) } },
    async (request, reply) =>
      sendObject(reply, await store.delete(objectRef(def, request.params.id, request.query.project), writeMeta(request)).catch(explainStale('If-Match'))),
  );

  app.put<{ Params: Params; Querystring: Query; Body: Record<string, unknown> }>(
    `${base}/:id/status`,
    {
      config,
      schema: { tags, summary: `Replace a ${def.kind}'s status (agents and the server)`, params: IdParams, querystring: ProjectQuery, body: def.status, response: withErrors({ 200: read }) },
    },
    async (request, reply) =>
      sendObject(
        reply,
        await store.updateStatus(objectRef(def, request.params.id, request.query.project), request.body, writeMeta(request)).catch(explainStale('If-Match')),
      ),
  );
}
