import type { Identity } from '../../auth/authenticator.ts';
import { invalid } from '../../api/errors.ts';
import type { AnyObject } from '../../api/object.ts';
import type { DiffChange } from '../../api/wire.ts';

/** What the API shows in place of each private parameter's value; a PUT carrying it keeps the stored value. */
export const privateMark = '[private]';

type Params = Record<string, string>;

function privateOf(spec: unknown): Params | undefined {
  const install = (spec as { install?: { privateParameters?: Params } } | undefined)?.install;
  return install?.privateParameters;
}

function masked(params: Params): Params {
  return Object.fromEntries(Object.keys(params).map((k) => [k, privateMark]));
}

/** Only a host's agent reads private values (it serves them to the guest); everyone else sees them masked. */
export function readsPrivate(identity: Identity | undefined): boolean {
  return identity?.node !== undefined;
}

/** Pure: the object as the API shows it, private parameter values masked; the same object when it has none. */
export function redactObject<T>(obj: T): T {
  const o = obj as AnyObject;
  if (o?.kind !== 'vm') return obj;
  const params = privateOf(o.spec);
  if (!params || Object.keys(params).length === 0) return obj;
  const spec = o.spec as { install: Record<string, unknown> };
  return { ...o, spec: { ...spec, install: { ...spec.install, privateParameters: masked(params) } } } as T;
}

/**
 * Pure: an object's JSON text with private parameter values masked, reparsed
 * only when it may hold some: their key appears literally in any text that
 * holds it unless the text escapes letters (`\u`), which is then reparsed too.
 */
export function redactJson(json: string): string {
  if (!json.includes('privateParameters') && !json.includes('\\u')) return json;
  const obj = JSON.parse(json) as unknown;
  const shown = redactObject(obj);
  return shown === obj ? json : JSON.stringify(shown);
}

/** The object for this caller: raw for a node's agent, masked for everyone else. */
export function redactFor<T>(identity: Identity | undefined, obj: T): T {
  return readsPrivate(identity) ? obj : redactObject(obj);
}

/** Whether a VM spec sends some private value back as the mark (its stored value must then be read). */
export function carriesMark(kind: string, spec: Record<string, unknown>): boolean {
  const params = kind === 'vm' ? privateOf(spec) : undefined;
  return params !== undefined && Object.values(params).includes(privateMark);
}

/**
 * Pure: the spec to store, each private value sent back as the mark replaced by
 * the stored one, so an edit of a shown (masked) VM keeps its values. A mark with
 * no stored value to keep is refused: it would store the mark itself.
 */
export function restorePrivate(kind: string, spec: Record<string, unknown>, current: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!carriesMark(kind, spec)) return spec;
  const params = privateOf(spec)!;
  const stored = privateOf(current) ?? {};
  const out: Params = {};
  for (const [k, v] of Object.entries(params)) {
    if (v !== privateMark) out[k] = v;
    else if (Object.hasOwn(stored, k)) out[k] = stored[k]!;
    else throw invalid(`/spec/install/privateParameters/${k}`, `is "${privateMark}" but no value is stored for "${k}": pass the value itself`);
  }
  const install = spec.install as Record<string, unknown>;
  return { ...spec, install: { ...install, privateParameters: out } };
}

const privatePath = ['spec', 'install', 'privateParameters'];

function redactValue(segments: string[], value: unknown): unknown {
  if (segments.length > privatePath.length) return privateMark;
  if (value === null || typeof value !== 'object') return value;
  if (segments.length === privatePath.length) return masked(value as Params);
  const key = privatePath[segments.length]!;
  const v = value as Record<string, unknown>;
  return Object.hasOwn(v, key) ? { ...v, [key]: redactValue([...segments, key], v[key]) } : value;
}

/** Pure: a diff of raw versions with private values masked; a changed private value shows as a change of "[private]". */
export function redactDiff(changes: DiffChange[]): DiffChange[] {
  return changes.map((c) => {
    const segments = c.path.split('/').slice(1);
    const inside = segments.every((s, i) => i >= privatePath.length || s === privatePath[i]);
    if (!inside) return c;
    return {
      ...c,
      ...(c.from !== undefined ? { from: redactValue(segments, c.from) } : {}),
      ...(c.to !== undefined ? { to: redactValue(segments, c.to) } : {}),
    };
  });
}
