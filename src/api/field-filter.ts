import { ApiError } from './errors.ts';

/**
 * Equality filters on paths into `metadata`, `spec` and `status`: `spec.image=debian`, `status.node=host-1`,
 * `metadata.owner.team=infra`. The value compares against the leaf's text
 * (numbers and booleans in their JSON spelling). Only scalar leaves outside arrays match.
 */
export interface FieldFilter {
  path: string;
  value: string;
}

const pathRe = /^(spec|metadata|status)(\.[A-Za-z0-9_-]{1,128}){1,16}$/;

export function parseFieldFilter(text: string): FieldFilter {
  const eq = text.indexOf('=');
  const path = eq < 0 ? text : text.slice(0, eq);
  const bad = (message: string) =>
    new ApiError('invalid', `Invalid field filter "${text.slice(0, 200)}": ${message}`, { details: [{ path: 'where', message }] });
  if (eq < 0) throw bad('expected path=value');
  if (!pathRe.test(path)) throw bad(`"${path.slice(0, 200)}" is not a path into spec, metadata or status (e.g. spec.image or metadata.team)`);
  const value = text.slice(eq + 1);
  if (value.length > 1024) throw bad('value longer than 1024 characters');
  return { path, value };
}

/** The text a scalar leaf is compared as; undefined for objects, arrays and null. */
export function leafText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return JSON.stringify(v);
  return undefined;
}

export function fieldAt(doc: Record<string, unknown>, path: string): unknown {
  let cur: unknown = doc;
  for (const seg of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = Object.hasOwn(cur, seg) ? (cur as Record<string, unknown>)[seg] : undefined;
  }
  return cur;
}

export function matchesFieldFilter(doc: Record<string, unknown>, f: FieldFilter): boolean {
  return leafText(fieldAt(doc, f.path)) === f.value;
}
