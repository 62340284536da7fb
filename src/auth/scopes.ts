import type { Verb } from './authorizer.ts';

/**
 * Token scopes: `*` (everything), `<resource>:<verb>` with `*` allowed on
 * either side (`vm:write`, `*:read`, `image:*`). A write scope also covers
 * reading the same resource: one cannot sensibly change what one cannot see.
 */
export const scopePattern = /^(\*|(\*|[a-z][a-z0-9-]{0,62}):(\*|read|write))$/;

/** Whether `scope` is well formed. */
export function isScope(scope: string): boolean {
  return scopePattern.test(scope);
}

function parts(scope: string): [string, string] {
  if (scope === '*') return ['*', '*'];
  const i = scope.indexOf(':');
  return [scope.slice(0, i), scope.slice(i + 1)];
}

function verbCovers(have: string, want: string): boolean {
  return have === '*' || have === want || (have === 'write' && want === 'read');
}

/** Whether one scope allows everything another allows. */
export function scopeCovers(have: string, want: string): boolean {
  const [hr, hv] = parts(have);
  const [wr, wv] = parts(want);
  return (hr === '*' || hr === wr) && verbCovers(hv, wv);
}

/** Whether a set of scopes allows one action. */
export function scopesAllow(scopes: readonly string[], resource: string, verb: Verb): boolean {
  return scopes.some((s) => scopeCovers(s, `${resource}:${verb}`));
}

/** The scopes of `child` that no scope of `parent` covers. */
export function scopesBeyond(parent: readonly string[], child: readonly string[]): string[] {
  return child.filter((c) => !parent.some((p) => scopeCovers(p, c)));
}
