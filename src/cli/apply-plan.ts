import { diffJson } from '../api/diff.ts';
import type { ErrorDetail } from '../api/errors.ts';
import type { Reference } from '../api/kind.ts';
import { defaultProject, isKind, kindDef, kinds } from '../api/kinds.ts';
import type { AnyObject, Labels, Metadata } from '../api/object.ts';
import { schemaErrors } from '../api/validate.ts';
import type { DiffChange } from '../api/wire.ts';
import { documentError, withoutReadOnly } from './documents.ts';

/** One object of an apply file, validated on its own. */
export interface ApplyDoc {
  /** 1-based position in the file, for errors. */
  index: number;
  kind: string;
  /** Set for project-scoped kinds only. */
  project?: string;
  name: string;
  labels: Labels;
  metadata: Metadata;
  spec: Record<string, unknown>;
}

/** What a document changes on the server. */
export interface PlannedChange {
  doc: ApplyDoc;
  action: 'create' | 'update' | 'unchanged';
  current?: AnyObject;
  changes: DiffChange[];
}

/** Spec fields the server fills in when a document leaves them out; apply keeps their live value. */
const serverAssigned: Record<string, readonly string[]> = { network: ['vni'] };

/** Kinds in the order apply writes them, so references resolve: projects, sites, … vms last. */
export const applyKindOrder = ['project', 'site', 'node', 'machine-type', 'image', 'firewall', 'network', 'vm'] as const;

/** `kind/project/name`: one object's identity within an apply. */
export function keyOf(kind: string, project: string | undefined, name: string): string {
  return `${kind}/${project ?? ''}/${name}`;
}

/** The references of a document, plus its project (which must exist too). */
export function referencesOf(doc: ApplyDoc): (Reference & { project?: string })[] {
  const refs: (Reference & { project?: string })[] = kindDef(doc.kind)
    .references(doc.spec)
    .map((r) => (kindDef(r.kind).scope === 'project' ? { ...r, project: doc.project } : r));
  if (doc.project !== undefined) refs.push({ kind: 'project', name: doc.project, path: '/project' });
  return refs;
}

/**
 * Checks every document on its own (known kind, schema of a create, the kind's
 * own checks, no duplicates) and throws one `invalid` naming the first bad
 * document, with details for all.
 */
export function readApplyDocs(docs: { index: number; doc: Record<string, unknown> }[], source: string, defaultTo = defaultProject): ApplyDoc[] {
  const out: ApplyDoc[] = [];
  const problems: { index: number; details: ErrorDetail[] }[] = [];
  const seen = new Map<string, number>();
  for (const { index, doc } of docs) {
    const body = withoutReadOnly(doc);
    const kind = body.kind;
    if (typeof kind !== 'string' || !isKind(kind)) {
      problems.push({ index, details: [{ path: '/kind', message: `expected one of ${kinds.map((k) => k.kind).join(', ')}` }] });
      continue;
    }
    const def = kindDef(kind);
    const details = schemaErrors(def.create, body);
    if (details.length === 0) details.push(...(def.checkSpec?.(body.spec as Record<string, unknown>) ?? []));
    if (details.length) {
      problems.push({ index, details });
      continue;
    }
    const project = def.scope === 'project' ? ((body.project as string | undefined) ?? defaultTo) : undefined;
    const name = body.name as string;
    const key = keyOf(kind, project, name);
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      problems.push({ index, details: [{ path: '/name', message: `${kind} "${name}" is already in document ${earlier}` }] });
      continue;
    }
    seen.set(key, index);
    const item: ApplyDoc = {
      index,
      kind,
      name,
      labels: (body.labels as Labels | undefined) ?? {},
      metadata: (body.metadata as Metadata | undefined) ?? {},
      spec: body.spec as Record<string, unknown>,
    };
    if (project !== undefined) item.project = project;
    out.push(item);
  }
  if (problems.length) {
    const first = problems[0]!;
    const err = documentError(source, first.index, first.details);
    for (const p of problems.slice(1)) err.details!.push(...documentError(source, p.index, p.details).details!);
    throw err;
  }
  return out;
}

/**
 * Orders documents so every reference to another document comes after it:
 * by kind (applyKindOrder), then file order, with dependencies inside a kind
 * (a firewall naming another) pulled forward. A cycle keeps file order.
 */
export function orderForApply(docs: readonly ApplyDoc[]): ApplyDoc[] {
  const rank = (d: ApplyDoc) => applyKindOrder.indexOf(d.kind as (typeof applyKindOrder)[number]);
  const sorted = [...docs].sort((a, b) => rank(a) - rank(b) || a.index - b.index);
  const byKey = new Map(sorted.map((d) => [keyOf(d.kind, d.project, d.name), d]));
  const out: ApplyDoc[] = [];
  const state = new Map<ApplyDoc, 'visiting' | 'done'>();
  const visit = (d: ApplyDoc) => {
    if (state.has(d)) return;
    state.set(d, 'visiting');
    for (const r of referencesOf(d)) {
      const dep = byKey.get(keyOf(r.kind, r.project, r.name));
      if (dep && dep !== d && rank(dep) >= rank(d)) visit(dep);
    }
    state.set(d, 'done');
    out.push(d);
  };
  sorted.forEach(visit);
  return out;
}

/** The part of an object apply manages. */
export function managed(o: { labels: Labels; metadata: Metadata; spec: Record<string, unknown> }) {
  return { labels: o.labels, metadata: o.metadata, spec: o.spec };
}

/** The spec a document asks for, with server-assigned fields it leaves out kept at their live values. */
export function desiredSpec(doc: ApplyDoc, current: AnyObject | undefined): Record<string, unknown> {
  const spec = { ...doc.spec };
  for (const f of serverAssigned[doc.kind] ?? []) if (spec[f] === undefined && current?.spec[f] !== undefined) spec[f] = current.spec[f];
  return spec;
}

function isEmptyObject(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0;
}

/** Whether and how a document changes its live object. */
export function planChange(doc: ApplyDoc, current: AnyObject | undefined): PlannedChange {
  const want = managed({ ...doc, spec: desiredSpec(doc, current) });
  if (!current) return { doc, action: 'create', changes: diffJson({}, want).filter((c) => c.path === '/spec' || !isEmptyObject(c.to)) };
  const changes = diffJson(managed(current), want);
  return { doc, action: changes.length ? 'update' : 'unchanged', current, changes };
}

/** A document as the stored object it would become, for checks against other documents. */
export function asObject(doc: ApplyDoc): AnyObject {
  const o: AnyObject = {
    kind: doc.kind,
    id: '',
    name: doc.name,
    labels: doc.labels,
    metadata: doc.metadata,
    spec: doc.spec,
    status: {},
    revision: 0,
    createdAt: '',
    updatedAt: '',
    updatedBy: '',
  };
  if (doc.project !== undefined) o.project = doc.project;
  return o;
}
