import Table from 'cli-table3';
import YAML from 'yaml';
import type { AnyObject } from '../api/object.ts';
import type { DiffChange } from '../api/wire.ts';

/** How `-o` prints results. */
export type OutputFormat = 'table' | 'json' | 'yaml';
export const outputFormats: readonly OutputFormat[] = ['table', 'json', 'yaml'];

/** One column of a table: its header and how to read a cell. */
export interface Column<T = AnyObject> {
  header: string;
  value(o: T): unknown;
}

const blank = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '',
};

function cell(v: unknown): string {
  if (v === undefined || v === null || v === '') return '-';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.length ? v.map(cell).join(',') : '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A borderless, left-aligned table, as kubectl prints; trailing blanks trimmed. */
export function renderTable(headers: readonly string[], rows: readonly unknown[][]): string {
  const table = new Table({
    head: [...headers],
    chars: blank,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 3, compact: true },
  });
  for (const row of rows) table.push(row.map(cell));
  return table
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '')
    .join('\n');
}

/** JSON (indented) or YAML of any value. */
export function renderValue(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) : YAML.stringify(value).trimEnd();
}

/**
 * Objects as a table, a JSON array, or YAML documents separated by `---`
 * (so that `crowd vm list -o yaml | crowd apply -f -` works).
 */
export function renderObjects<T>(objects: readonly T[], format: OutputFormat, columns: readonly Column<T>[]): string {
  switch (format) {
    case 'table':
      return objects.length === 0 ? 'No objects found.' : renderTable(columns.map((c) => c.header), objects.map((o) => columns.map((c) => c.value(o))));
    case 'json':
      return renderValue(objects, 'json');
    case 'yaml':
      return objects.map((o) => renderValue(o, 'yaml')).join('\n---\n');
  }
}

function short(v: unknown): string {
  return v === undefined ? '' : JSON.stringify(v);
}

/** Diff changes, one a line: `+ /path: new`, `- /path: old`, `~ /path: old -> new`. */
export function renderChanges(changes: readonly DiffChange[]): string {
  if (changes.length === 0) return 'No differences.';
  return changes
    .map((c) => {
      switch (c.op) {
        case 'add':
          return `+ ${c.path}: ${short(c.to)}`;
        case 'remove':
          return `- ${c.path}: ${short(c.from)}`;
        case 'replace':
          return `~ ${c.path}: ${short(c.from)} -> ${short(c.to)}`;
      }
    })
    .join('\n');
}
