/** A user name and password taken from an `Authorization: Basic …` header. */
export interface BasicCredentials {
  user: string;
  password: string;
}

const maxHeader = 4096;

/**
 * Parses `Basic base64(user:password)` (RFC 7617); undefined when the header is
 * not Basic or is malformed, so the authenticator can pass it on unclaimed.
 * User names with control characters or a colon are refused; passwords may hold colons.
 */
export function parseBasic(authorization: string, scheme = 'Basic'): BasicCredentials | undefined {
  if (authorization.length > maxHeader) return undefined;
  const m = /^(\S+)\s+([A-Za-z0-9+/]+={0,2})$/.exec(authorization);
  if (!m || m[1]!.toLowerCase() !== scheme.toLowerCase()) return undefined;
  const text = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  const user = text.slice(0, colon);
  const password = text.slice(colon + 1);
  // eslint-disable-next-line no-control-regex
  if (user.length > 256 || /[\u0000-\u001f\u007f]/.test(user)) return undefined;
  return { user, password };
}

/** Builds the header value for `parseBasic`, for clients and tests. */
export function formatBasic(user: string, password: string, scheme = 'Basic'): string {
  return `${scheme} ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}
