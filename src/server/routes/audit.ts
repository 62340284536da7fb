import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { AuditEntry } from '../../api/wire.ts';
import type { Store } from '../../store/store.ts';
import { withErrors } from './route-schemas.ts';

export const AuditQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'entries per page (default 100)' })),
    before: Type.Optional(Type.Integer({ minimum: 1, description: 'entries with an id below this one (the next page)' })),
  },
  { additionalProperties: false },
);

export const AuditList = Type.Object({ items: Type.Array(AuditEntry) });
export type AuditList = Static<typeof AuditList>;

/** `GET /v1/audit`: mutating requests, newest first. */
export function registerAuditRoute(app: FastifyInstance, deps: { store: Store }): void {
  app.get<{ Querystring: Static<typeof AuditQuery> }>(
    '/v1/audit',
    { config: { resource: 'audit' }, schema: { tags: ['system'], summary: 'The audit log of mutating requests, newest first', querystring: AuditQuery, response: withErrors({ 200: AuditList }) } },
    async (request): Promise<AuditList> => ({ items: await deps.store.listAudit({ limit: request.query.limit ?? 100, before: request.query.before }) }),
  );
}
