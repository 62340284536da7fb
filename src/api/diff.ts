import type { DiffChange } from './wire.ts';

function escape(seg: string): string {
  return seg.replace(/~/g, '~0').replace(/\//g, '~1');
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A structural diff of two JSON values; arrays compare whole unless of equal length. */
export function diffJson(a: unknown, b: unknown, path = ''): DiffChange[] {
  if (isPlain(a) && isPlain(b)) {
    const out: DiffChange[] = [];
    for (const k of Object.keys(a)) {
      const p = `${path}/${escape(k)}`;
      if (!Object.hasOwn(b, k)) out.push({ op: 'remove', path: p, from: a[k] });
      else out.push(...diffJson(a[k], b[k], p));
    }
    for (const k of Object.keys(b)) if (!Object.hasOwn(a, k)) out.push({ op: 'add', path: `${path}/${escape(k)}`, to: b[k] });
    return out;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.flatMap((v, i) => diffJson(v, b[i], `${path}/${i}`));
  }
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  return [{ op: 'replace', path: path || '/', from: a, to: b }];
}
