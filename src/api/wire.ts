import { Type, type Static } from '@sinclair/typebox';
import type { AnyObject } from './object.ts';

/** A page of a list; `continue` fetches the next one, and `revision` is the store's revision at the time of the read. */
export const ObjectList = Type.Object({
  items: Type.Array(Type.Unknown()),
  revision: Type.Integer(),
  continue: Type.Optional(Type.String()),
});
export interface ObjectList<T = AnyObject> {
  items: T[];
  revision: number;
  continue?: string;
}

export const HistoryEntry = Type.Object({
  revision: Type.Integer(),
  op: Type.Union([Type.Literal('put'), Type.Literal('delete')]),
  author: Type.String(),
  reason: Type.Optional(Type.String()),
  time: Type.String({ format: 'date-time' }),
  object: Type.Unknown(),
});
export interface HistoryEntry<T = AnyObject> {
  revision: number;
  op: 'put' | 'delete';
  author: string;
  reason?: string;
  time: string;
  object: T;
}

export const HistoryList = Type.Object({ items: Type.Array(HistoryEntry), continue: Type.Optional(Type.String()) });
export interface HistoryList<T = AnyObject> {
  items: HistoryEntry<T>[];
  continue?: string;
}

/**
 * One change on a watch. `bookmark` carries no object: it tells a quiet
 * watcher the newest revision so a resume starts there.
 */
export const WatchEvent = Type.Object({
  type: Type.Union([Type.Literal('put'), Type.Literal('delete'), Type.Literal('bookmark')]),
  revision: Type.Integer(),
  object: Type.Optional(Type.Unknown()),
});
export type WatchEvent<T = AnyObject> =
  | { type: 'put' | 'delete'; revision: number; object: T }
  | { type: 'bookmark'; revision: number };

export const DiffChange = Type.Object({
  op: Type.Union([Type.Literal('add'), Type.Literal('remove'), Type.Literal('replace')]),
  path: Type.String(),
  from: Type.Optional(Type.Unknown()),
  to: Type.Optional(Type.Unknown()),
});
export type DiffChange = Static<typeof DiffChange>;

export const Diff = Type.Object({
  from: Type.Integer(),
  to: Type.Integer(),
  changes: Type.Array(DiffChange),
});
export type Diff = Static<typeof Diff>;

export const RollbackBody = Type.Object(
  {
    revision: Type.Integer({ minimum: 1 }),
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);
export type RollbackBody = Static<typeof RollbackBody>;

export const AuditEntry = Type.Object({
  id: Type.Integer(),
  time: Type.String({ format: 'date-time' }),
  who: Type.String(),
  authenticator: Type.Optional(Type.String()),
  source: Type.String(),
  method: Type.String(),
  path: Type.String(),
  kind: Type.Optional(Type.String()),
  target: Type.Optional(Type.String()),
  status: Type.Integer(),
  result: Type.String(),
});
export type AuditEntry = Static<typeof AuditEntry>;
