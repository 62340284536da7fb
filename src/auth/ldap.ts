import { randomBytes } from 'node:crypto';
import { Client, InvalidCredentialsError } from 'ldapts';
import { ApiError } from '../api/errors.ts';
import type { Logger } from '../base/logger.ts';
import type { Authenticator, AuthRequest, AuthResult } from './authenticator.ts';
import { parseBasic } from './basic-credentials.ts';
import { applyGrants, type Grant, type GrantMap } from './grants.ts';
import { normalizeDn, renderFilter } from './ldap-filter.ts';

export interface LdapOptions {
  /** `ldap://host:port` or `ldaps://host:port`. */
  url: string;
  /** Upgrade an `ldap://` connection with StartTLS before sending any credential. */
  startTls?: boolean;
  /** PEM of the CA to trust (default: the system's). */
  caPem?: string;
  /** The service account that searches for users. */
  bindDn: string;
  bindPassword: string;
  userBase: string;
  /** Finds the user; `{user}` is the login name, escaped (default `(uid={user})`). */
  userFilter?: string;
  /** The attribute that becomes the identity's name (default `uid`). */
  nameAttribute?: string;
  /** Group DN → grants; compared case-insensitively. */
  groups?: GrantMap;
  /**
   * Where groups come from: absent, the user's `memberOf` attribute; else a
   * search under `base` with `filter` (default `(member={dn})`, `{user}` also available).
   */
  groupSearch?: { base: string; filter?: string };
  /** Per operation and for connecting (default 5 s). */
  timeoutMs?: number;
  logger: Logger;
}

/**
 * Search-then-bind against a directory: the service account finds the user's
 * entry (and groups), then a bind as that entry checks the password. Claims
 * `Basic` credentials of users the directory has; an unknown user costs a
 * bind too, so timing does not reveal who exists. A directory that cannot be
 * reached answers 503 `unavailable`, never a wrong-password denial.
 */
export class LdapAuthenticator implements Authenticator {
  readonly name = 'ldap';
  private readonly grants: Map<string, Grant[]>;

  constructor(private readonly opts: LdapOptions) {
    this.grants = new Map(Object.entries(opts.groups ?? {}).map(([dn, g]) => [normalizeDn(dn), g]));
  }

  async authenticate(req: AuthRequest): Promise<AuthResult> {
    const cred = parseBasic(req.authorization);
    if (!cred) return { outcome: 'skip' };
    // An empty password would be an unauthenticated bind, which succeeds (RFC 4513 §5.1.2).
    if (cred.password === '') return { outcome: 'deny', reason: 'empty password' };
    const client = await this.connect();
    try {
      await this.bindService(client);
      const entry = await this.findUser(client, cred.user);
      // An unknown user goes through the same steps against a DN that does not exist.
      const dummy = { dn: `${this.opts.nameAttribute ?? 'uid'}=${randomBytes(12).toString('hex')},${this.opts.userBase}`, name: cred.user, memberOf: [] };
      const groups = await this.groupsOf(client, entry ?? dummy);
      const ok = await this.bindUser(client, (entry ?? dummy).dn, cred.password);
      if (!entry) return { outcome: 'skip' };
      if (!ok) return { outcome: 'deny', reason: 'wrong password' };
      const roles = applyGrants(groups.flatMap((g) => this.grants.get(normalizeDn(g)) ?? []));
      const names = groups.flatMap((g) => [normalizeDn(g), /^[^=]+=([^,]+)/.exec(g)?.[1] ?? g]);
      return { outcome: 'ok', identity: { name: entry.name, authenticator: this.name, ...roles, ...(names.length ? { groups: [...new Set(names)] } : {}) } };
    } catch (e) {
      throw this.unavailable(e);
    } finally {
      await client.unbind().catch(() => {});
    }
  }

  private async connect(): Promise<Client> {
    const timeout = this.opts.timeoutMs ?? 5000;
    const tls = () => (this.opts.caPem ? { ca: [this.opts.caPem] } : {});
    // ldapts speaks TLS from the start whenever tlsOptions are given, so give them only for ldaps.
    const secure = /^ldaps:/i.test(this.opts.url);
    const client = new Client({ url: this.opts.url, timeout, connectTimeout: timeout, ...(secure ? { tlsOptions: tls() } : {}) });
    if (this.opts.startTls) {
      try {
        // Over an existing socket Node checks the certificate against `host` (default "localhost").
        await client.startTLS({ ...tls(), host: new URL(this.opts.url).hostname.replace(/^\[|\]$/g, '') });
      } catch (e) {
        await client.unbind().catch(() => {});
        throw this.unavailable(e);
      }
    }
    return client;
  }

  private async bindService(client: Client): Promise<void> {
    try {
      await client.bind(this.opts.bindDn, this.opts.bindPassword);
    } catch (e) {
      throw new Error(`service account "${this.opts.bindDn}" cannot bind: ${(e as Error).message}`, { cause: e });
    }
  }

  private async findUser(client: Client, user: string): Promise<{ dn: string; name: string; memberOf: string[] } | undefined> {
    const nameAttribute = this.opts.nameAttribute ?? 'uid';
    const filter = renderFilter(this.opts.userFilter ?? '(uid={user})', { user });
    const { searchEntries } = await client.search(this.opts.userBase, { scope: 'sub', filter, attributes: [nameAttribute, 'memberOf'], sizeLimit: 2 });
    if (searchEntries.length !== 1) {
      if (searchEntries.length > 1) this.opts.logger.warn({ userFilter: this.opts.userFilter }, 'LDAP user filter matches more than one entry: refusing the login');
      return undefined;
    }
    const e = searchEntries[0]!;
    const name = first(e[nameAttribute]);
    if (!name) return undefined;
    return { dn: e.dn, name, memberOf: values(e.memberOf) };
  }

  private async groupsOf(client: Client, user: { dn: string; name: string; memberOf: string[] }): Promise<string[]> {
    const gs = this.opts.groupSearch;
    if (!gs) return user.memberOf;
    const filter = renderFilter(gs.filter ?? '(member={dn})', { dn: user.dn, user: user.name });
    const { searchEntries } = await client.search(gs.base, { scope: 'sub', filter, attributes: ['dn'] });
    return searchEntries.map((e) => e.dn);
  }

  /** True when the password is right; false for wrong credentials; throws for anything else. */
  private async bindUser(client: Client, dn: string, password: string): Promise<boolean> {
    try {
      await client.bind(dn, password);
      return true;
    } catch (e) {
      if (e instanceof InvalidCredentialsError) return false;
      throw e;
    }
  }

  private unavailable(e: unknown): ApiError {
    if (e instanceof ApiError) return e;
    this.opts.logger.warn({ url: this.opts.url, err: (e as Error).message }, 'Cannot reach the LDAP directory');
    return new ApiError('unavailable', 'Cannot authenticate: the directory is unavailable', { cause: e });
  }
}

function values(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
}

function first(v: unknown): string | undefined {
  return values(v)[0];
}
