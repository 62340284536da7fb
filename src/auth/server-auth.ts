import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { Clock } from '../base/clock.ts';
import type { Logger } from '../base/logger.ts';
import type { Authenticator } from './authenticator.ts';
import { NodeCredentialAuthenticator, type StoredNodeCredential } from './node-credential.ts';
import { buildAuthenticators } from './registry.ts';
import { ScopedTokenAuthenticator } from './scoped-token.ts';
import { StaticTokenAuthenticator, type StaticToken } from './static-token.ts';
import type { TotpState } from './totp.ts';

/** Where the default scoped-token signing key lives inside the data directory. */
export const scopedTokenKeyFile = 'scoped-token.key';

/** What the chain needs of a stored credential: node credentials and scoped tokens. */
export interface CredentialLookup {
  getCredential(id: string): Promise<(StoredNodeCredential & { type: string }) | undefined>;
}

export interface ServerAuthOptions {
  dataDir: string;
  /** `--auth-config`: YAML or JSON, a list of authenticators or `{authenticators: [...]}`. */
  configFile?: string;
  /** The data directory's god tokens (hashes), always first so the admin cannot be locked out. */
  staticTokens: readonly StaticToken[];
  credentials: CredentialLookup;
  logger: Logger;
  clock: Clock;
  totpState?: TotpState;
}

/** The chain and the scoped-token authenticator the token routes mint with (absent when config leaves it out). */
export interface ServerAuth {
  authenticators: Authenticator[];
  scoped?: ScopedTokenAuthenticator;
}

/** The data directory's scoped-token key: 32 random bytes made on first use (mode 0600). */
export async function ensureScopedTokenKey(dataDir: string): Promise<string> {
  const path = join(dataDir, scopedTokenKeyFile);
  try {
    await writeFile(path, randomBytes(32), { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return path;
}

/** Reads an auth config file; a bad file names itself and the problem. */
export async function readAuthConfig(file: string): Promise<unknown> {
  let doc: unknown;
  try {
    doc = parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`Cannot read auth config "${file}": ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const list = doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? (doc as { authenticators?: unknown }).authenticators : doc;
  return list;
}

/** Whether a scoped token was revoked; one the store does not know (another server's key) counts as revoked. */
export function tokenRevocation(credentials: CredentialLookup): (id: string) => Promise<boolean> {
  return async (id) => {
    const c = await credentials.getCredential(id);
    return !c || c.type !== 'token' || c.revoked === true;
  };
}

/**
 * The server's chain: the data directory's static tokens, then the configured
 * authenticators (default: scoped tokens signed with the data directory's
 * key), then host credentials. A bad config throws an error naming the entry
 * and field, before the server listens.
 */
export async function buildServerAuth(o: ServerAuthOptions): Promise<ServerAuth> {
  const config = o.configFile !== undefined ? await readAuthConfig(o.configFile) : [{ type: 'scoped-token', keyFiles: [await ensureScopedTokenKey(o.dataDir)] }];
  const configured = await buildAuthenticators(config, {
    logger: o.logger,
    clock: o.clock,
    isRevoked: tokenRevocation(o.credentials),
    ...(o.totpState ? { totpState: o.totpState } : {}),
  });
  const scoped = configured.find((a): a is ScopedTokenAuthenticator => a instanceof ScopedTokenAuthenticator);
  const authenticators = [
    new StaticTokenAuthenticator(o.staticTokens),
    ...configured,
    new NodeCredentialAuthenticator(async (id) => {
      const c = await o.credentials.getCredential(id);
      return c?.type === 'node' ? c : undefined;
    }, o.clock),
  ];
  return { authenticators, ...(scoped ? { scoped } : {}) };
}
