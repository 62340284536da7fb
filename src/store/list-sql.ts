import { ApiError } from '../api/errors.ts';
import type { FieldFilter } from '../api/field-filter.ts';
import type { Selector } from '../api/selector.ts';
import { fieldKey, labelPath } from './fields.ts';

/** A piece of SQL with its parameters; `?` placeholders, renumbered by backends that need `$n`. */
export interface Sql {
  text: string;
  params: unknown[];
}

/** Continue tokens carry the last (project, name) of a page. */
export function encodeContinue(project: string, name: string): string {
  return Buffer.from(JSON.stringify([project, name])).toString('base64url');
}

export function decodeContinue(token: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') return [v[0], v[1]];
  } catch {
    // fall through to the error below
  }
  throw new ApiError('invalid', 'Invalid continue token: it does not come from a previous page', {
    details: [{ path: 'continue', message: 'not a continue token' }],
  });
}

interface Condition {
  path: string;
  values?: string[];
  negate: boolean;
}

function conditions(selector: Selector = [], where: FieldFilter[] = []): Condition[] {
  const out: Condition[] = selector.map((r): Condition => {
    const path = labelPath(r.key);
    switch (r.op) {
      case 'eq':
      case 'ne':
        return { path, values: [fieldKey(r.value)], negate: r.op === 'ne' };
      case 'in':
      case 'notin':
        return { path, values: r.values.map(fieldKey), negate: r.op === 'notin' };
      case 'exists':
      case 'absent':
        return { path, negate: r.op === 'absent' };
    }
  });
  for (const f of where) out.push({ path: f.path, values: [fieldKey(f.value)], negate: false });
  return out;
}

export interface ListSqlOptions {
  kind: string;
  /** Undefined for all projects. */
  project?: string;
  selector?: Selector;
  where?: FieldFilter[];
  after?: [string, string];
  limit: number;
}

/**
 * Builds the list query over `objects o` and the field index `fields`.
 * A positive requirement drives the query through the index (CROSS JOIN fixes
 * the join order in SQLite); the rest become semi-joins.
 */
export function listSql(o: ListSqlOptions): Sql {
  const conds = conditions(o.selector, o.where);
  const params: unknown[] = [];
  const inList = (vals: string[]) => {
    params.push(...vals);
    return vals.map(() => '?').join(',');
  };
  const driver = conds.find((c) => !c.negate);
  let from = 'objects o';
  const where: string[] = [];
  if (driver) {
    params.push(o.kind, driver.path);
    from = `fields d CROSS JOIN objects o`;
    where.push(`d.kind = ? AND d.path = ?`);
    if (driver.values) where.push(`d.v IN (${inList(driver.values)})`);
    where.push('o.id = d.id');
  }
  params.push(o.kind);
  where.push('o.kind = ?');
  if (o.project !== undefined) {
    params.push(o.project);
    where.push('o.project = ?');
  }
  for (const c of conds) {
    if (c === driver) continue;
    params.push(o.kind, c.path);
    let sub = `SELECT f.id FROM fields f WHERE f.kind = ? AND f.path = ?`;
    if (c.values) sub += ` AND f.v IN (${inList(c.values)})`;
    where.push(`o.id ${c.negate ? 'NOT IN' : 'IN'} (${sub})`);
  }
  // Both forms are index range scans on (kind, project, name), so each page costs its own size, not its offset.
  if (o.after && o.project !== undefined) {
    params.push(o.after[1]);
    where.push('o.name > ?');
  } else if (o.after) {
    params.push(o.after[0], o.after[1]);
    where.push('(o.project, o.name) > (?, ?)');
  }
  params.push(o.limit);
  return {
    text: `SELECT o.project AS project, o.name AS name, o.doc AS doc FROM ${from} WHERE ${where.join(' AND ')} ORDER BY o.project, o.name LIMIT ?`,
    params,
  };
}
