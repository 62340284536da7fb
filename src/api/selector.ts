import { ApiError } from './errors.ts';
import { labelKeyPattern, labelValuePattern } from './object.ts';

/**
 * A label selector, as in Kubernetes:
 *   env=prod, tier!=db, tier in (web,api), tier notin (db), has(x), x, !has(x), !x
 * Requirements are ANDed. `!=` and `notin` also match objects without the label.
 */
export type Requirement =
  | { op: 'eq' | 'ne'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'absent'; key: string };

export type Selector = Requirement[];

const keyRe = new RegExp(labelKeyPattern);
const valueRe = new RegExp(labelValuePattern);

function fail(text: string, message: string): never {
  throw new ApiError('invalid', `Invalid label selector "${text}": ${message}`, {
    details: [{ path: 'selector', message }],
  });
}

/** Splits on commas that are not inside parentheses. */
function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
    if (depth < 0 || depth > 1) fail(text, 'unbalanced parentheses');
  }
  if (depth !== 0) fail(text, 'unbalanced parentheses');
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

function key(text: string, k: string): string {
  if (!keyRe.test(k)) fail(text, `"${k}" is not a valid label key`);
  return k;
}

function value(text: string, v: string): string {
  if (v.length > 63 || !valueRe.test(v)) fail(text, `"${v}" is not a valid label value`);
  return v;
}

export function parseSelector(text: string): Selector {
  if (text.length > 4096) fail(text.slice(0, 32) + '…', 'longer than 4096 characters');
  if (text.trim() === '') return [];
  return splitTop(text).map((part): Requirement => {
    if (part === '') fail(text, 'empty requirement');
    let m = /^(!)?has\(\s*([^()\s]+)\s*\)$/.exec(part);
    if (m) return { op: m[1] ? 'absent' : 'exists', key: key(text, m[2]!) };
    m = /^(\S+?)\s+(in|notin)\s*\(([^()]*)\)$/.exec(part);
    if (m) {
      const values = m[3]!.split(',').map((v) => value(text, v.trim()));
      if (values.length === 0 || (values.length === 1 && values[0] === '')) fail(text, `"${part}" lists no values`);
      return { op: m[2] as 'in' | 'notin', key: key(text, m[1]!), values };
    }
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
    if (m) return { op: m[2] === '!=' ? 'ne' : 'eq', key: key(text, m[1]!), value: value(text, m[3]!) };
    m = /^(!)?([^=!()\s]+)$/.exec(part);
    if (m) return { op: m[1] ? 'absent' : 'exists', key: key(text, m[2]!) };
    fail(text, `cannot parse "${part}"`);
  });
}

export function matchesSelector(selector: Selector, labels: Record<string, string>): boolean {
  return selector.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const v = labels[r.key];
    switch (r.op) {
      case 'eq':
        return has && v === r.value;
      case 'ne':
        return !has || v !== r.value;
      case 'in':
        return has && r.values.includes(v!);
      case 'notin':
        return !has || !r.values.includes(v!);
      case 'exists':
        return has;
      case 'absent':
        return !has;
    }
  });
}

export function formatSelector(selector: Selector): string {
  return selector
    .map((r) => {
      switch (r.op) {
        case 'eq':
          return `${r.key}=${r.value}`;
        case 'ne':
          return `${r.key}!=${r.value}`;
        case 'in':
        case 'notin':
          return `${r.key} ${r.op} (${r.values.join(',')})`;
        case 'exists':
          return r.key;
        case 'absent':
          return `!${r.key}`;
      }
    })
    .join(',');
}
