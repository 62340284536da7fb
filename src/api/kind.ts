import type { TSchema } from '@sinclair/typebox';
import type { ErrorDetail } from './errors.ts';
import type { AnyObject } from './object.ts';

/** Where a reference points: a kind and a name, in the referrer's project for project-scoped kinds. */
export interface Reference {
  kind: string;
  name: string;
  /** JSON pointer of the field that holds the reference, for error details. */
  path: string;
}

/** Everything the store and server need to know about one kind. */
export interface KindDef {
  kind: string;
  plural: string;
  /** Prefix of generated ids, e.g. "vm" gives "vm_01J…". */
  idPrefix: string;
  scope: 'project' | 'cluster';
  spec: TSchema;
  status: TSchema;
  read: TSchema;
  create: TSchema;
  update: TSchema;
  /** Names this spec depends on; they must exist, and block their deletion. */
  references(spec: Record<string, unknown>): Reference[];
  /** Checks that need no other object (CIDR containment, min <= max, …). */
  checkSpec?(spec: Record<string, unknown>): ErrorDetail[];
  /**
   * Checks against the referenced objects (e.g. a machine type's allowed ranges),
   * and against other objects of the same kind in the project (`siblings`, e.g. overlapping subnets)
   * when `needsSiblings` is set.
   */
  checkWith?(spec: Record<string, unknown>, ctx: CheckContext): ErrorDetail[];
  needsSiblings?: boolean;
}

export interface CheckContext {
  /** The referenced object, resolved by the store inside the write's transaction. */
  ref(kind: string, name: string): AnyObject | undefined;
  /** Other live objects of the same kind and project (only when `needsSiblings`). */
  siblings: AnyObject[];
  /** The name of the object being written. */
  name: string;
  /** The object as it is before this write; absent on create. */
  existing?: AnyObject;
}
