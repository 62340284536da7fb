import { Type, type Static, type TSchema } from '@sinclair/typebox';

/** A DNS label: lower-case letters, digits and '-', 1–63 characters. */
export const DnsLabel = Type.String({
  pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$',
  maxLength: 63,
  description: 'a DNS label: a-z, 0-9 and "-", 1-63 characters, no leading or trailing "-"',
});

export const labelKeyPattern = '^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$';
export const labelValuePattern = '^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$';

export const Labels = Type.Record(
  Type.String({ pattern: labelKeyPattern }),
  Type.String({ pattern: labelValuePattern, maxLength: 63 }),
  { maxProperties: 64, additionalProperties: false, description: 'labels for selectors: up to 64 key/value pairs' },
);
export type Labels = Static<typeof Labels>;

/** Opaque customer JSON; its serialized size is capped by `maxMetadataBytes`. */
export const Metadata = Type.Record(Type.String(), Type.Unknown(), {
  description: 'opaque customer JSON, at most 64 KiB serialized',
});
export type Metadata = Static<typeof Metadata>;
export const maxMetadataBytes = 64 * 1024;

export const Condition = Type.Object(
  {
    type: Type.String({ maxLength: 64 }),
    status: Type.Union([Type.Literal('true'), Type.Literal('false'), Type.Literal('unknown')]),
    reason: Type.Optional(Type.String({ maxLength: 128 })),
    message: Type.Optional(Type.String({ maxLength: 4096 })),
    lastTransition: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);
export type Condition = Static<typeof Condition>;

/** The fields every object carries besides spec and status. */
export interface ObjectMeta {
  kind: string;
  id: string;
  name: string;
  project?: string;
  labels: Labels;
  metadata: Metadata;
  revision: number;
  createdAt: string;
  updatedAt: string;
  updatedBy: string;
}

/** Any stored object, untyped spec and status. */
export interface AnyObject extends ObjectMeta {
  spec: Record<string, unknown>;
  status: Record<string, unknown>;
}

const readOnly = {
  id: Type.String(),
  revision: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  updatedBy: Type.String(),
};

/** The read shape of a kind. */
export function objectSchema<K extends string, S extends TSchema, T extends TSchema>(kind: K, spec: S, status: T) {
  return Type.Object(
    {
      kind: Type.Literal(kind),
      ...readOnly,
      name: DnsLabel,
      project: Type.Optional(DnsLabel),
      labels: Labels,
      metadata: Metadata,
      spec,
      status,
    },
    { $id: `${pascal(kind)}`, additionalProperties: false },
  );
}

/** The POST body of a kind. */
export function createSchema<K extends string, S extends TSchema>(kind: K, spec: S) {
  return Type.Object(
    {
      kind: Type.Optional(Type.Literal(kind)),
      name: DnsLabel,
      project: Type.Optional(DnsLabel),
      labels: Type.Optional(Labels),
      metadata: Type.Optional(Metadata),
      spec,
    },
    { $id: `${pascal(kind)}Create`, additionalProperties: false },
  );
}

/**
 * The PUT body of a kind: the read shape with the read-only fields optional.
 * Read-only fields, when present, must match the object (a `revision` acts as If-Match).
 */
export function updateSchema<K extends string, S extends TSchema>(kind: K, spec: S) {
  return Type.Object(
    {
      kind: Type.Optional(Type.Literal(kind)),
      id: Type.Optional(readOnly.id),
      revision: Type.Optional(readOnly.revision),
      createdAt: Type.Optional(readOnly.createdAt),
      updatedAt: Type.Optional(readOnly.updatedAt),
      updatedBy: Type.Optional(readOnly.updatedBy),
      name: Type.Optional(DnsLabel),
      project: Type.Optional(DnsLabel),
      labels: Type.Optional(Labels),
      metadata: Type.Optional(Metadata),
      spec,
      status: Type.Optional(Type.Unknown()),
    },
    { $id: `${pascal(kind)}Update`, additionalProperties: false },
  );
}

export function pascal(kind: string): string {
  return kind.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase());
}
