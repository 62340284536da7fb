import type { AnyObject } from '../api/object.ts';
import type { UpdateInput } from './store.ts';

/**
 * Whether two values are the same JSON: key order does not count and a key
 * whose value is undefined is absent, as in their stored text. Compares in
 * place, without encoding either (every status write asks this).
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => sameJson(v ?? null, b[i] ?? null));
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let defined = 0;
  for (const k in x) {
    if (x[k] === undefined) continue;
    defined++;
    if (!Object.hasOwn(y, k) || !sameJson(x[k], y[k])) return false;
  }
  for (const k in y) if (y[k] !== undefined) defined--;
  return defined === 0;
}

/** Whether an update would leave labels, metadata and spec as they are (then no revision is spent). */
export function sameContent(current: AnyObject, input: UpdateInput): boolean {
  return sameJson(current.labels, input.labels) && sameJson(current.metadata, input.metadata) && sameJson(current.spec, input.spec);
}
