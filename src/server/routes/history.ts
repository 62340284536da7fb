import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { diffJson } from '../../api/diff.ts';
import { invalid } from '../../api/errors.ts';
import type { KindDef } from '../../api/kind.ts';
import type { AnyObject } from '../../api/object.ts';
import { Diff, HistoryList, RollbackBody } from '../../api/wire.ts';
import type { Store } from '../../store/store.ts';
import { redactDiff, redactFor, readsPrivate } from '../secrets/private-parameters.ts';
import { objectRef } from './objects.ts';
import { DiffQuery, IdParams, PageQuery, ProjectQuery, withErrors } from './route-schemas.ts';
import { explainStale, sendObject, writeMeta } from './write-meta.ts';

type Params = Static<typeof IdParams>;

/** The parts of an object a diff compares; bookkeeping fields (revision, updatedAt…) always change and say nothing. */
function diffable(obj: AnyObject): Record<string, unknown> {
  return { labels: obj.labels, metadata: obj.metadata, spec: obj.spec, status: obj.status };
}

/** History, diff and rollback routes of one kind. */
export function registerHistoryRoutes(app: FastifyInstance, def: KindDef, deps: { store: Store }): void {
  const { store } = deps;
  const base = `/v1/${def.plural}/:id`;
  const tags = [def.kind];
  const config = { resource: def.kind, kind: def.kind };

  app.get<{ Params: Params; Querystring: Static<typeof PageQuery> }>(
    `${base}/history`,
    { config, schema: { tags, summary: `Versions of a ${def.kind}, newest first`, params: IdParams, querystring: PageQuery, response: withErrors({ 200: HistoryList }) } },
    async (request) => {
      const q = request.query;
      const history = await store.history(objectRef(def, request.params.id, q.project), { limit: q.limit, continue: q.continue });
      return { ...history, items: history.items.map((e) => ({ ...e, object: redactFor(request.identity, e.object) })) };
    },
  );

  app.get<{ Params: Params; Querystring: Static<typeof DiffQuery> }>(
    `${base}/diff`,
    { config, schema: { tags, summary: `Changes to a ${def.kind} between two revisions`, params: IdParams, querystring: DiffQuery, response: withErrors({ 200: Diff }) } },
    async (request): Promise<Diff> => {
      const q = request.query;
      if (q.to !== undefined && q.to < q.from) throw invalid('to', `must not be below from (${q.from})`);
      const ref = objectRef(def, request.params.id, q.project);
      const [older, newer] = await Promise.all([
        store.get(ref, { atRevision: q.from }),
        q.to === undefined ? store.get(ref) : store.get(ref, { atRevision: q.to }),
      ]);
      const changes = diffJson(diffable(older), diffable(newer));
      return { from: q.from, to: q.to ?? newer.revision, changes: readsPrivate(request.identity) ? changes : redactDiff(changes) };
    },
  );

  app.post<{ Params: Params; Querystring: Static<typeof ProjectQuery>; Body: RollbackBody }>(
    `${base}/rollback`,
    {
      config,
      schema: {
        tags,
        summary: `Restore a ${def.kind}'s labels, metadata and spec of an old revision, as a new write`,
        params: IdParams,
        querystring: ProjectQuery,
        body: RollbackBody,
        response: withErrors({ 200: Type.Ref(def.read) }),
      },
    },
    async (request, reply) => {
      const ref = objectRef(def, request.params.id, request.query.project);
      const meta = writeMeta(request);
      const { revision, reason } = request.body;
      const old = await store.get(ref, { atRevision: revision });
      const why = reason ?? meta.reason;
      meta.reason = `rollback to revision ${revision}${why ? `: ${why}` : ''}`;
      const restored = await store.update(ref, { labels: old.labels, metadata: old.metadata, spec: old.spec }, meta).catch(explainStale('If-Match'));
      return sendObject(reply, restored);
    },
  );
}
