import type { ApiError } from '../api/errors.ts';
import type { AnyObject, Labels, Metadata } from '../api/object.ts';
import type { FieldFilter } from '../api/field-filter.ts';
import type { Selector } from '../api/selector.ts';
import type { AuditEntry, HistoryList, ObjectList, WatchEvent } from '../api/wire.ts';

/** Names one object: by id or by name (within `project` for project-scoped kinds). */
export interface ObjectRef {
  kind: string;
  /** Ignored for cluster-scoped kinds; defaults to "default". */
  project?: string;
  /** An id (`vm_01J…`) or a name. */
  idOrName: string;
}

/** Who writes and why; kept in the history. */
export interface WriteMeta {
  author: string;
  reason?: string;
  /** Optimistic concurrency: the write fails with `precondition_failed` unless the object is at this revision. */
  ifRevision?: number;
}

export interface CreateInput {
  kind: string;
  project?: string;
  name: string;
  labels?: Labels;
  metadata?: Metadata;
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export interface UpdateInput {
  labels: Labels;
  metadata: Metadata;
  spec: Record<string, unknown>;
}

/** One item of a batch of status writes. */
export interface StatusWrite {
  ref: ObjectRef;
  status: Record<string, unknown>;
  /** If-Match for this item alone: a stale one fails only this item. */
  ifRevision?: number;
}

/** The outcome of one item of a batch of status writes. */
export type StatusResult = { ok: true; object: AnyObject } | { ok: false; error: ApiError };

export interface ListQuery {
  kind: string;
  /** A project name, or "*" for every project; ignored for cluster-scoped kinds. */
  project?: string;
  selector?: Selector;
  where?: FieldFilter[];
  /** Page size, 1–1000 (default 500). */
  limit?: number;
  /** The `continue` token of the previous page. */
  continue?: string;
}

export interface WatchQuery {
  /** Kinds to watch; all when empty. */
  kinds?: string[];
  /** A project, or "*" / absent for all; cluster-scoped kinds are always included. */
  project?: string;
  selector?: Selector;
  where?: FieldFilter[];
  /** Events with a revision above this one are delivered; `gone` if history before it was compacted. */
  fromRevision: number;
  /** Only these object ids (the node authorizer narrows watches this way). */
  ids?: ReadonlySet<string>;
}

/** A live object as stored: its JSON text, and the name and project a list's access filter reads without decoding it. */
export interface StoredObject {
  name: string;
  /** Absent for cluster-scoped kinds. */
  project?: string;
  json: string;
}

/**
 * Compaction: history entries at or below a revision are removed, except the
 * newest `keepPerObject` versions of each object (so history and rollback keep
 * working). A watch from below the compacted revision gets `gone`.
 */
export interface CompactionPolicy {
  /** Always keep at least this many of the newest revisions (default 100,000). */
  retainRevisions: number;
  /** Always keep history younger than this (default 7 days). */
  retainMs: number;
  /** Versions per object kept beyond the horizon (default 10). */
  keepPerObject: number;
}

export const defaultCompactionPolicy: CompactionPolicy = {
  retainRevisions: 100_000,
  retainMs: 7 * 24 * 3600 * 1000,
  keepPerObject: 10,
};

/**
 * A secret-bearing credential (join token, node credential, scoped token).
 * Only the hash of its secret is kept; credentials never appear in history,
 * watches or object lists.
 */
export interface Credential {
  id: string;
  /** `totp`: a user's second factor (secret, last used step, recovery code hashes in `data`). */
  type: 'join' | 'node' | 'token' | 'totp';
  /** sha256 (hex) of the secret part. */
  hash: string;
  /** Whom it authenticates: a node name, a user… */
  subject: string;
  expiresAt: string;
  createdAt: string;
  createdBy: string;
  revoked?: boolean;
  /** Set once a one-time credential was used. */
  usedAt?: string;
  data: Record<string, unknown>;
}

export interface AuditQuery {
  limit?: number;
  /** Entries with an id below this one (paging backwards). */
  before?: number;
}

/**
 * The versioned document store. Every write gets the next revision of one
 * store-wide counter and is kept in the history with its author and reason.
 * Specs are validated (schema, semantic checks, references) inside the write.
 */
export interface Store {
  /** The newest revision. */
  revision(): Promise<number>;
  /** The revision at and below which history was compacted (0 when never). */
  compactedRevision(): Promise<number>;
  create(input: CreateInput, meta: WriteMeta): Promise<AnyObject>;
  /** Replaces labels, metadata and spec; status is kept. */
  update(ref: ObjectRef, input: UpdateInput, meta: WriteMeta): Promise<AnyObject>;
  /** Replaces status only. */
  updateStatus(ref: ObjectRef, status: Record<string, unknown>, meta: WriteMeta): Promise<AnyObject>;
  /**
   * Replaces the status of many objects in one commit, with the history and
   * watch events of as many `updateStatus` calls in this order; a refused
   * item (stale If-Match, invalid, not found) fails alone, a store failure
   * fails the call.
   */
  updateStatuses(writes: StatusWrite[], meta: Omit<WriteMeta, 'ifRevision'>): Promise<StatusResult[]>;
  /** Deletes; `conflict` while other objects reference it. Returns the last version. */
  delete(ref: ObjectRef, meta: WriteMeta): Promise<AnyObject>;
  /** The live object, or (with `atRevision`) the version current at that revision. */
  get(ref: ObjectRef, opts?: { atRevision?: number }): Promise<AnyObject>;
  list(query: ListQuery): Promise<ObjectList>;
  /** `list` with each object as its stored JSON text, so an API can answer a page without decoding and encoding it again. */
  listStored(query: ListQuery): Promise<ObjectList<StoredObject>>;
  /** Versions of one object, newest first. */
  history(ref: ObjectRef, opts?: { limit?: number; continue?: string }): Promise<HistoryList>;
  /** Changes after `fromRevision`, then live ones until `signal` aborts. */
  watch(query: WatchQuery, signal: AbortSignal): AsyncIterable<WatchEvent>;
  compact(policy?: Partial<CompactionPolicy>): Promise<{ compactedRevision: number }>;
  appendAudit(entry: Omit<AuditEntry, 'id'>): Promise<void>;
  listAudit(query: AuditQuery): Promise<AuditEntry[]>;
  putCredential(c: Credential): Promise<void>;
  getCredential(id: string): Promise<Credential | undefined>;
  /** Marks a one-time credential used at `at`; false when it was already used. */
  useCredential(id: string, at: string): Promise<boolean>;
  /** Revokes every credential matching; returns how many. */
  revokeCredentials(match: { id?: string; subject?: string; type?: Credential['type'] }): Promise<number>;
  listCredentials(match: { type: Credential['type']; subject?: string }): Promise<Credential[]>;
  close(): Promise<void>;
}
