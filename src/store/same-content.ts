import type { AnyObject } from '../api/object.ts';
import type { UpdateInput } from './store.ts';

/** Canonical JSON: object keys sorted, so key order never counts as a change. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : val,
  );
}

/** Whether an update would leave labels, metadata and spec as they are (then no revision is spent). */
export function sameContent(current: AnyObject, input: UpdateInput): boolean {
  return (
    canonicalJson(current.labels) === canonicalJson(input.labels) &&
    canonicalJson(current.metadata) === canonicalJson(input.metadata) &&
    canonicalJson(current.spec) === canonicalJson(input.spec)
  );
}
