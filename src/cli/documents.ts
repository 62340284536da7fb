import YAML from 'yaml';
import { ApiError, type ErrorDetail } from '../api/errors.ts';

/** Fields of a read object that a write does not take; dropped so `get -o yaml` output can be written back. */
export const readOnlyFields = ['id', 'revision', 'createdAt', 'updatedAt', 'updatedBy', 'status'] as const;

/** A document that failed, with its 1-based index in the file. */
export function documentError(source: string, index: number, details: ErrorDetail[]): ApiError {
  const first = details[0]!;
  const at = first.path === '/' ? '' : `${first.path}: `;
  return new ApiError('invalid', `Invalid document ${index} in "${source}": ${at}${first.message}`, {
    details: details.map((d) => ({ path: `document ${index}${d.path === '/' ? '' : d.path}`, message: d.message })),
  });
}

/** The documents of a YAML (or JSON) text; empty documents are skipped, but keep their index in errors. */
export function parseDocuments(text: string, source: string): { index: number; doc: Record<string, unknown> }[] {
  const out: { index: number; doc: Record<string, unknown> }[] = [];
  YAML.parseAllDocuments(text).forEach((d, i) => {
    const index = i + 1;
    if (d.errors.length) throw documentError(source, index, [{ path: '/', message: d.errors[0]!.message.split('\n')[0]! }]);
    const doc: unknown = d.toJS();
    if (doc === null || doc === undefined) return;
    if (typeof doc !== 'object' || Array.isArray(doc)) throw documentError(source, index, [{ path: '/', message: 'expected a mapping with kind, name and spec' }]);
    out.push({ index, doc: doc as Record<string, unknown> });
  });
  return out;
}

/** The document without read-only fields. */
export function withoutReadOnly(doc: Record<string, unknown>): Record<string, unknown> {
  const out = { ...doc };
  for (const f of readOnlyFields) delete out[f];
  return out;
}
