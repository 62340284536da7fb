/** Longest request target accepted; anything longer gets 414. */
export const maxPathLength = 512;
const maxSegments = 16;
const segmentPattern = /^[A-Za-z0-9_:=+-][A-Za-z0-9._:=+-]*$/;

/** A request target split into path segments, or why it is refused. */
export type RequestPath = { ok: true; segments: string[] } | { ok: false; status: 400 | 414; reason: string };

/**
 * Checks and splits a request target. The service serves a fixed tree, so
 * anything unusual is refused rather than normalized: percent-encoding,
 * `.`/`..` and hidden segments, empty segments (`//`), backslashes and any
 * character outside a small set. The query string is ignored; a trailing
 * `/` is allowed (directories answer with or without it).
 */
export function parseRequestPath(target: string): RequestPath {
  if (target.length > maxPathLength) return { ok: false, status: 414, reason: 'path too long' };
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (!path.startsWith('/')) return { ok: false, status: 400, reason: 'path must start with "/"' };
  if (path.includes('%')) return { ok: false, status: 400, reason: 'percent-encoding is not accepted' };
  if (path === '/') return { ok: true, segments: [] };
  const inner = path.endsWith('/') ? path.slice(1, -1) : path.slice(1);
  const segments = inner.split('/');
  if (segments.length > maxSegments) return { ok: false, status: 400, reason: 'too many path segments' };
  for (const s of segments) {
    if (!segmentPattern.test(s)) return { ok: false, status: 400, reason: 'bad path segment' };
  }
  return { ok: true, segments };
}
