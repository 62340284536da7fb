import { Type, type TSchema } from '@sinclair/typebox';
import { ErrorBody } from '../../api/errors.ts';
import { DnsLabel } from '../../api/object.ts';

/** The error body as a shared (referenced) schema in the OpenAPI document. */
export const ErrorSchema = Type.Unsafe<ErrorBody>({ ...ErrorBody, $id: 'Error' });

/** Path parameter of every object route. */
export const IdParams = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 128, description: 'an object id (vm_01J…) or name' }) },
  { additionalProperties: false },
);

const project = Type.Optional(Type.String({ ...DnsLabel, description: 'the project (default "default"); ignored by cluster-scoped kinds' }));

export const ProjectQuery = Type.Object({ project }, { additionalProperties: false });

export const GetQuery = Type.Object(
  { project, revision: Type.Optional(Type.Integer({ minimum: 1, description: 'the version current at this revision' })) },
  { additionalProperties: false },
);

export const selectorParam = Type.Optional(Type.String({ maxLength: 4096, description: 'label selector: env=prod,tier!=db,tier in (web,api),has(x),!y' }));
export const whereParam = Type.Optional(
  Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 32, description: 'equality filters on spec or metadata: spec.image=debian-12 (repeatable)' }),
);

export const ListQuery = Type.Object(
  {
    project: Type.Optional(Type.Union([DnsLabel, Type.Literal('*')], { description: 'a project, or "*" for every project' })),
    selector: selectorParam,
    where: whereParam,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'page size (default 500)' })),
    continue: Type.Optional(Type.String({ maxLength: 1024, description: 'the continue token of the previous page' })),
  },
  { additionalProperties: false },
);

export const PageQuery = Type.Object(
  {
    project,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    continue: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);

export const DiffQuery = Type.Object(
  {
    project,
    from: Type.Integer({ minimum: 1, description: 'the older revision' }),
    to: Type.Optional(Type.Integer({ minimum: 1, description: 'the newer revision (default: the live object)' })),
  },
  { additionalProperties: false },
);

/** A JSON merge patch (RFC 7386) of labels, metadata and spec; `null` removes. */
export const PatchBody = Type.Object(
  {
    labels: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()])), Type.Null()])),
    metadata: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
    spec: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false, description: 'a JSON merge patch of labels, metadata and spec' },
);

/** The error responses every authenticated route may give, for the OpenAPI document. */
export function withErrors(ok: Record<number, TSchema>): Record<string, TSchema> {
  return { ...ok, default: Type.Ref(ErrorSchema, { description: 'an error: {"error": {code, message, details}}' }) };
}
