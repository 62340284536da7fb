import { ApiError, type ErrorDetail } from '../api/errors.ts';
import type { KindDef, Reference } from '../api/kind.ts';
import { maxMetadataBytes, type AnyObject } from '../api/object.ts';
import { invalidWith, schemaErrors } from '../api/validate.ts';

/** What a backend must be able to look up inside a write's transaction. */
export interface CheckLookup {
  /** A live object by kind, project ('' for cluster kinds) and name. */
  byName(kind: string, project: string, name: string): AnyObject | undefined;
  /** Live objects of a kind in a project. */
  all(kind: string, project: string): AnyObject[];
}

/** The project a reference's target lives in. */
export function refProject(target: KindDef, fromProject: string | undefined): string {
  return target.scope === 'project' ? (fromProject ?? '') : '';
}

/**
 * Validates a whole document before it is written: schema, metadata size,
 * the kind's own checks, that the project and every reference exist, and the
 * checks against referenced objects. Returns the references to record.
 */
export function checkObject(
  def: KindDef,
  doc: AnyObject,
  lookup: CheckLookup,
  kindOf: (kind: string) => KindDef,
  existing?: AnyObject,
): Reference[] {
  const details = schemaErrors(def.read, doc);
  if (details.length) throw invalidWith(def.kind, details);
  const metaBytes = new TextEncoder().encode(JSON.stringify(doc.metadata)).length;
  if (metaBytes > maxMetadataBytes)
    throw new ApiError('too_large', `Invalid ${def.kind}: metadata is ${metaBytes} bytes, more than ${maxMetadataBytes}`, {
      details: [{ path: '/metadata', message: `at most ${maxMetadataBytes} bytes serialized` }],
    });
  const problems: ErrorDetail[] = def.checkSpec?.(doc.spec) ?? [];
  if (problems.length) throw invalidWith(def.kind, problems);

  if (def.scope === 'project' && !lookup.byName('project', '', doc.project!))
    throw invalidWith(def.kind, [{ path: '/project', message: `project "${doc.project}" does not exist` }]);

  const refs = def.references(doc.spec);
  const resolved = new Map<string, AnyObject>();
  for (const r of refs) {
    const target = kindOf(r.kind);
    if (r.kind === def.kind && r.name === doc.name) continue;
    const found = lookup.byName(r.kind, refProject(target, doc.project), r.name);
    if (!found) problems.push({ path: r.path, message: `${r.kind} "${r.name}" does not exist` });
    else resolved.set(`${r.kind}/${r.name}`, found);
  }
  if (problems.length) throw invalidWith(def.kind, problems);

  if (def.checkWith) {
    const siblings = def.needsSiblings
      ? lookup.all(def.kind, doc.project ?? '').filter((o) => o.id !== doc.id)
      : [];
    const more = def.checkWith(doc.spec, {
      ref: (kind, name) => resolved.get(`${kind}/${name}`),
      siblings,
      name: doc.name,
      ...(existing ? { existing } : {}),
    });
    if (more.length) throw invalidWith(def.kind, more);
  }
  return refs.filter((r) => !(r.kind === def.kind && r.name === doc.name));
}

/**
 * Validates a status write: the status schema alone, since labels, metadata,
 * spec and references are those of the stored, already checked version.
 */
export function checkStatus(def: KindDef, status: Record<string, unknown>): void {
  const details = schemaErrors(def.status, status, '/status');
  if (details.length) throw invalidWith(def.kind, details);
}
