import { createHash } from 'node:crypto';
import { leafText } from '../api/field-filter.ts';
import type { AnyObject } from '../api/object.ts';

/**
 * The rows of the field index: every label (path `l:<key>`) and every scalar
 * leaf of `metadata`, `spec` and `status` outside arrays whose keys are addressable by a
 * field filter (path `spec.a.b`). Long values are indexed by hash so the index
 * stays small and lookups stay exact.
 */
export function indexedFields(doc: Pick<AnyObject, 'labels' | 'metadata' | 'spec' | 'status'>): [path: string, value: string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(doc.labels)) out.push([labelPath(k), fieldKey(v)]);
  walk(doc.metadata, 'metadata', 1, out);
  walk(doc.spec, 'spec', 1, out);
  walk(doc.status, 'status', 1, out);
  return out;
}

/** The `status.` rows of the field index alone: a status write changes no other row. */
export function statusFields(status: Record<string, unknown>): [path: string, value: string][] {
  const out: [string, string][] = [];
  walk(status, 'status', 1, out);
  return out;
}

const segment = /^[A-Za-z0-9_-]{1,128}$/;

function walk(value: unknown, path: string, depth: number, out: [string, string][]): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || depth > 16) return;
  for (const [k, v] of Object.entries(value)) {
    if (!segment.test(k)) continue;
    const p = `${path}.${k}`;
    const text = leafText(v);
    if (text !== undefined) out.push([p, fieldKey(text)]);
    else walk(v, p, depth + 1, out);
  }
}

/** The rows to add and to remove to turn the index rows `before` into `after`. */
export function fieldChanges(before: [string, string][], after: [string, string][]): { added: [string, string][]; removed: [string, string][] } {
  const key = ([p, v]: [string, string]) => `${p}\0${v}`;
  const old = new Set(before.map(key));
  const now = new Set(after.map(key));
  return { added: after.filter((r) => !old.has(key(r))), removed: before.filter((r) => !now.has(key(r))) };
}

export function labelPath(key: string): string {
  return `l:${key}`;
}

/** The indexed form of a value: itself when short, else its hash. */
export function fieldKey(text: string): string {
  return text.length <= 128 ? text : `#sha256:${createHash('sha256').update(text).digest('hex')}`;
}
